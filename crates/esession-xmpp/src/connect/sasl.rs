//! Choosing SASL mechanisms like a careful client, and what to do when one
//! fails (sans-IO; the exchange over the stream is in `super::login`).
//!
//! Order of preference, among what the server offers:
//!
//! 1. SCRAM-SHA-512-PLUS, SCRAM-SHA-256-PLUS, SCRAM-SHA-1-PLUS, with a
//!    channel binding type both sides support: the ones the server announces
//!    (XEP-0440), `tls-exporter` (TLS 1.3 only) before `tls-server-end-point`;
//!    without an announcement, `tls-exporter` on TLS 1.3 and
//!    `tls-server-end-point` on TLS 1.2. Only data we computed is ever sent.
//! 2. SCRAM-SHA-512, SCRAM-SHA-256, SCRAM-SHA-1 without binding: gs2 flag
//!    `y` ("I could bind, you offered no -PLUS") on TLS when the server offers
//!    no `-PLUS` mechanism, so that a server which does support binding sees
//!    the downgrade; `n` otherwise.
//! 3. PLAIN, last (only over TLS, or the explicit loopback-plaintext option).
//!
//! ANONYMOUS, DIGEST-MD5 and anything else are never used.
//!
//! A failed mechanism is followed by the next one unless the failure says
//! the credentials are wrong (or the account is unusable): RFC 6120's
//! `not-authorized` means exactly that, except after a `-PLUS` attempt with a
//! binding type the server never announced. There it is ambiguous: ejabberd
//! 23.01 answers `not-authorized` ("Invalid channel binding") to any binding
//! but `tls-unique`, which TLS 1.3 does not define and rustls does not
//! compute, while offering `-PLUS`. So the remaining `-PLUS` mechanisms are
//! skipped and plain SCRAM decides between "wrong password" and "binding
//! refused". When the server did announce the type, a refusal is taken at its
//! word (wrong credentials).
//!
//! Security note: that fallback means that an attacker who can break TLS
//! (a certificate the client trusts) and who removes the XEP-0440
//! announcement can also defeat channel binding, as they could by removing
//! the `-PLUS` offers against a client that does not remember them. The
//! certificate check stays the primary protection; binding is a second line
//! wherever the server's announcement lets us insist on it.

use std::collections::{BTreeSet, VecDeque};

use super::scram::{CbType, ScramError, ScramHash};
use super::{LoginError, MechanismFailure};

/// What the TLS layer lets us bind to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Channel {
    /// The connection is encrypted (TLS).
    pub(crate) tls: bool,
    /// TLS 1.3 (else 1.2 or older, or no TLS).
    pub(crate) tls13: bool,
    /// The channel binding types whose data we computed.
    pub(crate) types: Vec<CbType>,
}

/// How one attempt binds to the channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Binding {
    /// `-PLUS` with this type.
    Bound(CbType),
    /// Gs2 flag `y`.
    ServerLacksIt,
    /// Gs2 flag `n`.
    NotSupported,
}

/// One mechanism to try.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Candidate {
    /// SCRAM with this hash and binding.
    Scram(ScramHash, Binding),
    /// PLAIN (RFC 4616).
    Plain,
}

impl Candidate {
    /// The SASL mechanism name.
    pub(crate) fn mechanism(&self) -> &'static str {
        match self {
            Self::Scram(hash, Binding::Bound(_)) => hash.mechanism_plus(),
            Self::Scram(hash, _) => hash.mechanism(),
            Self::Plain => "PLAIN",
        }
    }

    fn binding(&self) -> Option<CbType> {
        match self {
            Self::Scram(_, Binding::Bound(cb)) => Some(*cb),
            _ => None,
        }
    }
}

/// How an attempt failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The server's `<failure/>`: its defined condition (XML name) and text.
    Server {
        condition: String,
        text: Option<String>,
    },
    /// Our side of SCRAM refused the server's messages.
    Scram(ScramError),
}

/// What to do after a failed attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Try [`Plan::next`].
    Continue,
    /// Give up for good.
    Fatal(LoginError),
    /// Give up on this login attempt; a later one may succeed.
    Transient(String),
}

const HASHES: [ScramHash; 3] = [ScramHash::Sha512, ScramHash::Sha256, ScramHash::Sha1];

/// The mechanisms still to try on a server, best first, and what failed.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    candidates: VecDeque<Candidate>,
    /// The server's XEP-0440 list, if it sent one.
    announced: Option<Vec<String>>,
    offered: Vec<String>,
    failures: Vec<MechanismFailure>,
}

impl Plan {
    /// The plan for a server offering `offered` (and announcing `announced`
    /// channel binding types, XEP-0440) on `channel`. `tried` are mechanism
    /// names that failed on an earlier connection and are not tried again;
    /// `failures` are those failures. PLAIN only with `allow_plain`.
    pub(crate) fn new(
        offered: &BTreeSet<String>,
        announced: Option<Vec<String>>,
        channel: &Channel,
        allow_plain: bool,
        tried: &BTreeSet<&'static str>,
        failures: Vec<MechanismFailure>,
    ) -> Self {
        let offers = |name: &str| offered.contains(name) && !tried.contains(name);
        let mut candidates = VecDeque::new();
        if let Some(cb) = binding_type(announced.as_deref(), channel) {
            for hash in HASHES {
                if offers(hash.mechanism_plus()) {
                    candidates.push_back(Candidate::Scram(hash, Binding::Bound(cb)));
                }
            }
        }
        let any_plus = HASHES.iter().any(|h| offered.contains(h.mechanism_plus()));
        let plain_scram = if !channel.tls || any_plus {
            Binding::NotSupported
        } else {
            Binding::ServerLacksIt
        };
        for hash in HASHES {
            if offers(hash.mechanism()) {
                candidates.push_back(Candidate::Scram(hash, plain_scram));
            }
        }
        if allow_plain && offers("PLAIN") {
            candidates.push_back(Candidate::Plain);
        }
        // A binding that failed on an earlier connection is not tried again
        // with another hash.
        candidates.retain(|c| {
            c.binding().is_none_or(|cb| {
                !failures
                    .iter()
                    .any(|f| f.channel_binding.as_deref() == Some(cb.name()))
            })
        });
        Self {
            candidates,
            announced,
            offered: offered.iter().cloned().collect(),
            failures,
        }
    }

    /// The next mechanism to try.
    pub(crate) fn next(&mut self) -> Option<Candidate> {
        self.candidates.pop_front()
    }

    /// The failures so far, in order.
    pub(crate) fn failures(&self) -> &[MechanismFailure] {
        &self.failures
    }

    /// Why logging in is impossible once [`Self::next`] returned `None`.
    pub(crate) fn exhausted(&self) -> LoginError {
        if self.failures.is_empty() {
            LoginError::NoMechanism {
                offered: self.offered.clone(),
            }
        } else {
            LoginError::MechanismsFailed {
                failures: self.failures.clone(),
            }
        }
    }

    fn announces(&self, cb: CbType) -> bool {
        self.announced
            .as_ref()
            .is_some_and(|list| list.iter().any(|t| t == cb.name()))
    }

    fn record(&mut self, candidate: &Candidate, reason: String) {
        self.failures.push(MechanismFailure {
            mechanism: candidate.mechanism().to_owned(),
            channel_binding: candidate.binding().map(|cb| cb.name().to_owned()),
            reason,
        });
    }

    /// The binding was refused (or could not be told apart from a wrong
    /// password): no more `-PLUS` attempts with it.
    fn drop_binding(&mut self, cb: CbType) {
        self.candidates.retain(|c| c.binding() != Some(cb));
    }

    /// What to do after `candidate` failed with `failure`.
    pub(crate) fn on_failure(&mut self, candidate: &Candidate, failure: Failure) -> Verdict {
        match failure {
            Failure::Server { condition, text } => {
                self.on_server_failure(candidate, &condition, text.as_deref())
            }
            Failure::Scram(error) => self.on_scram_error(candidate, error),
        }
    }

    fn on_server_failure(
        &mut self,
        candidate: &Candidate,
        condition: &str,
        text: Option<&str>,
    ) -> Verdict {
        let said = |what: &str| match text {
            Some(text) if !text.is_empty() => format!("the server answered {what} (\"{text}\")"),
            _ => format!("the server answered {what}"),
        };
        match condition {
            "not-authorized" => match candidate.binding() {
                Some(cb) if !self.announces(cb) => {
                    self.record(
                        candidate,
                        format!(
                            "{}: it does not support the {} channel binding, or the password is wrong",
                            said("not-authorized"),
                            cb.name()
                        ),
                    );
                    self.drop_binding(cb);
                    Verdict::Continue
                }
                _ => Verdict::Fatal(LoginError::WrongCredentials),
            },
            "account-disabled" => Verdict::Fatal(LoginError::AccountDisabled),
            "credentials-expired" => Verdict::Fatal(LoginError::CredentialsExpired),
            // RFC 6120, 6.5.12: "the client MAY try again later".
            "temporary-auth-failure" | "aborted" => Verdict::Transient(said(condition)),
            "encryption-required" => Verdict::Fatal(LoginError::Refused {
                condition: condition.to_owned(),
            }),
            // invalid-mechanism, mechanism-too-weak, malformed-request,
            // incorrect-encoding, invalid-authzid, or unknown: this mechanism
            // does not work here, another may.
            _ => {
                self.record(candidate, said(condition));
                Verdict::Continue
            }
        }
    }

    fn on_scram_error(&mut self, candidate: &Candidate, error: ScramError) -> Verdict {
        match &error {
            // The server answered our proof without knowing the password:
            // an impostor, or a broken server. Never hand it anything else
            // (PLAIN would send the password itself).
            ScramError::ServerSignatureMismatch | ScramError::NoServerSignature => {
                Verdict::Fatal(LoginError::ServerNotAuthenticated {
                    mechanism: candidate.mechanism().to_owned(),
                })
            }
            // RFC 5802's server-error values.
            ScramError::ServerError(value) => match value.as_str() {
                "invalid-proof" | "unknown-user" => Verdict::Fatal(LoginError::WrongCredentials),
                "channel-bindings-dont-match"
                | "channel-binding-not-supported"
                | "unsupported-channel-binding-type" => {
                    self.record(candidate, error.to_string());
                    if let Some(cb) = candidate.binding() {
                        self.drop_binding(cb);
                    }
                    Verdict::Continue
                }
                _ => {
                    self.record(candidate, error.to_string());
                    Verdict::Continue
                }
            },
            ScramError::Malformed(_)
            | ScramError::NonceMismatch
            | ScramError::Iterations(_)
            | ScramError::Prep => {
                self.record(candidate, error.to_string());
                Verdict::Continue
            }
        }
    }
}

/// The channel binding type for `-PLUS` mechanisms, if any: the best one we
/// computed that the server announced (XEP-0440); without an announcement,
/// `tls-exporter` on TLS 1.3 and `tls-server-end-point` before that.
fn binding_type(announced: Option<&[String]>, channel: &Channel) -> Option<CbType> {
    if !channel.tls {
        return None;
    }
    let have = |cb: CbType| channel.types.contains(&cb);
    match announced {
        Some(list) => [CbType::TlsExporter, CbType::TlsServerEndPoint]
            .into_iter()
            .filter(|cb| *cb != CbType::TlsExporter || channel.tls13)
            .find(|cb| have(*cb) && list.iter().any(|t| t == cb.name())),
        None if channel.tls13 => have(CbType::TlsExporter).then_some(CbType::TlsExporter),
        None => have(CbType::TlsServerEndPoint).then_some(CbType::TlsServerEndPoint),
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        reason = "test code"
    )]

    use super::*;

    fn offered(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    fn tls13() -> Channel {
        Channel {
            tls: true,
            tls13: true,
            types: vec![CbType::TlsExporter, CbType::TlsServerEndPoint],
        }
    }

    fn tls12() -> Channel {
        Channel {
            tls: true,
            tls13: false,
            types: vec![CbType::TlsServerEndPoint],
        }
    }

    fn plaintext() -> Channel {
        Channel::default()
    }

    fn plan(names: &[&str], announced: Option<&[&str]>, channel: &Channel) -> Plan {
        Plan::new(
            &offered(names),
            announced.map(|l| l.iter().map(|t| (*t).to_owned()).collect()),
            channel,
            true,
            &BTreeSet::new(),
            Vec::new(),
        )
    }

    fn order(mut plan: Plan) -> Vec<(String, Option<CbType>)> {
        let mut out = Vec::new();
        while let Some(c) = plan.next() {
            out.push((c.mechanism().to_owned(), c.binding()));
        }
        out
    }

    fn names(plan: Plan) -> Vec<String> {
        order(plan).into_iter().map(|(n, _)| n).collect()
    }

    const ALL: &[&str] = &[
        "PLAIN",
        "SCRAM-SHA-1",
        "SCRAM-SHA-1-PLUS",
        "SCRAM-SHA-256",
        "SCRAM-SHA-256-PLUS",
        "SCRAM-SHA-512",
        "SCRAM-SHA-512-PLUS",
        "ANONYMOUS",
        "DIGEST-MD5",
        "X-OAUTH2",
    ];

    #[test]
    fn prefers_plus_then_scram_by_strength_then_plain() {
        assert_eq!(
            order(plan(ALL, None, &tls13())),
            [
                ("SCRAM-SHA-512-PLUS".to_owned(), Some(CbType::TlsExporter)),
                ("SCRAM-SHA-256-PLUS".to_owned(), Some(CbType::TlsExporter)),
                ("SCRAM-SHA-1-PLUS".to_owned(), Some(CbType::TlsExporter)),
                ("SCRAM-SHA-512".to_owned(), None),
                ("SCRAM-SHA-256".to_owned(), None),
                ("SCRAM-SHA-1".to_owned(), None),
                ("PLAIN".to_owned(), None),
            ]
        );
    }

    /// Any SCRAM comes before PLAIN, and ANONYMOUS is never used.
    #[test]
    fn scram_before_plain_and_never_anonymous() {
        assert_eq!(
            names(plan(&["PLAIN", "SCRAM-SHA-1"], None, &tls13())),
            ["SCRAM-SHA-1", "PLAIN"]
        );
        assert!(names(plan(&["ANONYMOUS"], None, &tls13())).is_empty());
        assert_eq!(
            plan(&["ANONYMOUS", "DIGEST-MD5"], None, &tls13()).exhausted(),
            LoginError::NoMechanism {
                offered: vec!["ANONYMOUS".to_owned(), "DIGEST-MD5".to_owned()]
            }
        );
        let no_plain = Plan::new(
            &offered(&["PLAIN", "SCRAM-SHA-1"]),
            None,
            &tls13(),
            false,
            &BTreeSet::new(),
            Vec::new(),
        );
        assert_eq!(names(no_plain), ["SCRAM-SHA-1"]);
    }

    /// TLS 1.2 without an announcement: tls-server-end-point; no binding
    /// at all on a plaintext connection.
    #[test]
    fn binding_type_follows_tls_version() {
        assert_eq!(
            order(plan(&["SCRAM-SHA-1-PLUS", "SCRAM-SHA-1"], None, &tls12())),
            [
                (
                    "SCRAM-SHA-1-PLUS".to_owned(),
                    Some(CbType::TlsServerEndPoint)
                ),
                ("SCRAM-SHA-1".to_owned(), None),
            ]
        );
        assert_eq!(
            names(plan(
                &["SCRAM-SHA-1-PLUS", "SCRAM-SHA-1", "PLAIN"],
                None,
                &plaintext()
            )),
            ["SCRAM-SHA-1", "PLAIN"]
        );
    }

    /// XEP-0440: only a type the server announced, the best we computed.
    #[test]
    fn announced_types_decide_the_binding() {
        let both = ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"];
        assert_eq!(
            order(plan(
                &both,
                Some(&["tls-server-end-point", "tls-exporter"]),
                &tls13()
            ))[0],
            ("SCRAM-SHA-256-PLUS".to_owned(), Some(CbType::TlsExporter))
        );
        assert_eq!(
            order(plan(&both, Some(&["tls-server-end-point"]), &tls13()))[0],
            (
                "SCRAM-SHA-256-PLUS".to_owned(),
                Some(CbType::TlsServerEndPoint)
            )
        );
        // tls-exporter is not used on TLS 1.2 even if announced.
        assert_eq!(
            names(plan(&both, Some(&["tls-exporter"]), &tls12())),
            ["SCRAM-SHA-256"]
        );
        // Only tls-unique announced (which we never compute): no -PLUS.
        assert_eq!(
            names(plan(&both, Some(&["tls-unique"]), &tls13())),
            ["SCRAM-SHA-256"]
        );
        // Nothing computed (e.g. an Ed25519 certificate on TLS 1.2): no -PLUS.
        let nothing = Channel {
            tls: true,
            tls13: false,
            types: vec![],
        };
        assert_eq!(names(plan(&both, None, &nothing)), ["SCRAM-SHA-256"]);
    }

    /// The gs2 flag of plain SCRAM: `y` on TLS when the server offers no
    /// -PLUS, `n` when it does (we tried, or cannot use its binding) or
    /// without TLS.
    #[test]
    fn gs2_flag_of_plain_scram() {
        let first = |p: Plan| order_candidates(p)[0];
        assert_eq!(
            first(plan(&["SCRAM-SHA-1"], None, &tls13())),
            Candidate::Scram(ScramHash::Sha1, Binding::ServerLacksIt)
        );
        assert_eq!(
            order_candidates(plan(&["SCRAM-SHA-1", "SCRAM-SHA-1-PLUS"], None, &tls13()))[1],
            Candidate::Scram(ScramHash::Sha1, Binding::NotSupported)
        );
        assert_eq!(
            first(plan(
                &["SCRAM-SHA-1", "SCRAM-SHA-1-PLUS"],
                Some(&["tls-unique"]),
                &tls13()
            )),
            Candidate::Scram(ScramHash::Sha1, Binding::NotSupported)
        );
        assert_eq!(
            first(plan(&["SCRAM-SHA-1"], None, &plaintext())),
            Candidate::Scram(ScramHash::Sha1, Binding::NotSupported)
        );
    }

    fn order_candidates(mut plan: Plan) -> Vec<Candidate> {
        std::iter::from_fn(|| plan.next()).collect()
    }

    fn refused(condition: &str, text: Option<&str>) -> Failure {
        Failure::Server {
            condition: condition.to_owned(),
            text: text.map(str::to_owned),
        }
    }

    /// ejabberd 23.01 at default settings (SCRAM-SHA-1 storage): it offers
    /// SCRAM-SHA-1-PLUS on TLS 1.3 but checks only tls-unique, refusing our
    /// tls-exporter with not-authorized. Plain SCRAM-SHA-1 comes next.
    #[test]
    fn unannounced_binding_refusal_falls_back_to_plain_scram() {
        let mut p = plan(
            &["PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-1-PLUS", "X-OAUTH2"],
            None,
            &tls13(),
        );
        let plus = p.next().unwrap();
        assert_eq!(
            plus,
            Candidate::Scram(ScramHash::Sha1, Binding::Bound(CbType::TlsExporter))
        );
        assert_eq!(
            p.on_failure(
                &plus,
                refused("not-authorized", Some("Invalid channel binding"))
            ),
            Verdict::Continue
        );
        let scram = p.next().unwrap();
        assert_eq!(
            scram,
            Candidate::Scram(ScramHash::Sha1, Binding::NotSupported)
        );
        // ... where a wrong password is then reported as such.
        assert_eq!(
            p.clone()
                .on_failure(&scram, refused("not-authorized", None)),
            Verdict::Fatal(LoginError::WrongCredentials)
        );
        assert_eq!(p.failures().len(), 1);
        assert_eq!(p.failures()[0].mechanism, "SCRAM-SHA-1-PLUS");
        assert_eq!(
            p.failures()[0].channel_binding.as_deref(),
            Some("tls-exporter")
        );
        assert!(p.failures()[0].reason.contains("Invalid channel binding"));
    }

    /// One refused binding skips every -PLUS mechanism with it.
    #[test]
    fn a_refused_binding_is_not_tried_again() {
        let mut p = plan(ALL, None, &tls13());
        let first = p.next().unwrap();
        assert_eq!(
            p.on_failure(&first, refused("not-authorized", None)),
            Verdict::Continue
        );
        assert_eq!(
            names(p),
            ["SCRAM-SHA-512", "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"]
        );
    }

    /// A binding the server announced and then refused: the password is wrong.
    #[test]
    fn announced_binding_refusal_means_wrong_credentials() {
        let mut p = plan(
            &["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"],
            Some(&["tls-exporter"]),
            &tls13(),
        );
        let plus = p.next().unwrap();
        assert_eq!(
            p.on_failure(&plus, refused("not-authorized", None)),
            Verdict::Fatal(LoginError::WrongCredentials)
        );
    }

    #[test]
    fn account_problems_are_fatal_and_named() {
        for (condition, error) in [
            ("account-disabled", LoginError::AccountDisabled),
            ("credentials-expired", LoginError::CredentialsExpired),
            (
                "encryption-required",
                LoginError::Refused {
                    condition: "encryption-required".to_owned(),
                },
            ),
        ] {
            let mut p = plan(ALL, None, &tls13());
            let c = p.next().unwrap();
            assert_eq!(
                p.on_failure(&c, refused(condition, None)),
                Verdict::Fatal(error)
            );
        }
    }

    #[test]
    fn temporary_failures_are_transient() {
        for condition in ["temporary-auth-failure", "aborted"] {
            let mut p = plan(ALL, None, &tls13());
            let c = p.next().unwrap();
            assert!(matches!(
                p.on_failure(&c, refused(condition, None)),
                Verdict::Transient(_)
            ));
        }
    }

    /// A mechanism the server cannot run is followed by the next one; when
    /// all failed that way, the error lists each (not "wrong password").
    #[test]
    fn mechanism_failures_fall_through_and_are_listed() {
        let mut p = plan(&["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"], None, &tls13());
        let mut failures = 0;
        while let Some(c) = p.next() {
            let failure = match c {
                Candidate::Scram(ScramHash::Sha256, _) => refused("invalid-mechanism", None),
                Candidate::Scram(..) => Failure::Scram(ScramError::Iterations(0)),
                Candidate::Plain => refused("mechanism-too-weak", Some("use SCRAM")),
            };
            assert_eq!(p.on_failure(&c, failure), Verdict::Continue);
            failures += 1;
        }
        assert_eq!(failures, 3);
        let LoginError::MechanismsFailed { failures } = p.exhausted() else {
            panic!("{:?}", p.exhausted());
        };
        let mechanisms: Vec<&str> = failures.iter().map(|f| f.mechanism.as_str()).collect();
        assert_eq!(mechanisms, ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"]);
        assert!(failures[2].reason.contains("use SCRAM"));
    }

    /// A server that cannot prove it knows the password ends the login:
    /// nothing else is tried (PLAIN would hand it the password).
    #[test]
    fn server_signature_failure_stops_everything() {
        for error in [
            ScramError::ServerSignatureMismatch,
            ScramError::NoServerSignature,
        ] {
            let mut p = plan(&["SCRAM-SHA-1", "PLAIN"], None, &tls13());
            let c = p.next().unwrap();
            assert_eq!(
                p.on_failure(&c, Failure::Scram(error)),
                Verdict::Fatal(LoginError::ServerNotAuthenticated {
                    mechanism: "SCRAM-SHA-1".to_owned()
                })
            );
        }
    }

    #[test]
    fn scram_server_errors() {
        let mut p = plan(&["SCRAM-SHA-1", "PLAIN"], None, &tls13());
        let c = p.next().unwrap();
        assert_eq!(
            p.on_failure(
                &c,
                Failure::Scram(ScramError::ServerError("invalid-proof".to_owned()))
            ),
            Verdict::Fatal(LoginError::WrongCredentials)
        );
        let mut p = plan(ALL, None, &tls13());
        let c = p.next().unwrap();
        assert_eq!(
            p.on_failure(
                &c,
                Failure::Scram(ScramError::ServerError(
                    "channel-bindings-dont-match".to_owned()
                ))
            ),
            Verdict::Continue
        );
        assert_eq!(p.next().unwrap().mechanism(), "SCRAM-SHA-512");
    }

    /// After the server closed the stream, a new connection resumes with
    /// what was not tried yet, keeping the earlier failures.
    #[test]
    fn a_new_connection_skips_what_failed() {
        let offers = [
            "SCRAM-SHA-256-PLUS",
            "SCRAM-SHA-1",
            "SCRAM-SHA-1-PLUS",
            "PLAIN",
        ];
        let mut p = plan(&offers, None, &tls13());
        let plus = p.next().unwrap();
        assert_eq!(plus.mechanism(), "SCRAM-SHA-256-PLUS");
        assert_eq!(
            p.on_failure(&plus, refused("not-authorized", None)),
            Verdict::Continue
        );
        let tried = BTreeSet::from([plus.mechanism()]);
        let again = Plan::new(
            &offered(&offers),
            None,
            &tls13(),
            true,
            &tried,
            p.failures().to_vec(),
        );
        assert_eq!(again.failures().len(), 1);
        // Neither the failed mechanism nor its binding with another hash.
        assert_eq!(
            order_candidates(again),
            [
                Candidate::Scram(ScramHash::Sha1, Binding::NotSupported),
                Candidate::Plain
            ]
        );
    }
}
