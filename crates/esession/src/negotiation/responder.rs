//! Bob's side: evaluating an offer (message 1), the answer (message 2), and
//! checking Alice's completion to send the final `<init/>` (messages 3-4).

use esession_crypto::dh::negotiation_secret;
use esession_crypto::kdf::{
    SessionKeys, final_shared_secret, retained_secret_hash, shared_retained_secret_hash,
};
use esession_crypto::{
    CipherAlgorithm, CompressionAlgorithm, Counter, DhKeyPair, DhPublicValue, HashAlgorithm,
    ModpGroup, SasAlgorithm, ct_eq, sas28x5,
};
use esession_wire::form::{DataForm, Field, FormKind};
use esession_wire::minidom::Element;
use esession_wire::normalize::try_normalize_form_content;
use esession_wire::ns;

use super::fields::*;
use super::initiator::StepError;
use super::sigma::{self, IdentityKeys};
use super::{Agreed, Context, Refusal, RetainedMatch, b64, ranked, single, unb64, unexpired};
use crate::config::Config;
use crate::event::{SessionId, SessionInfo};
use crate::random::RandomPurpose;
use crate::session::kinds::StanzaKind;
use crate::session::{Direction, EstablishedSession, SessionSetup};
use crate::ssn::{Disclosure, ErrorCondition, Logging, Security};
use crate::stanza::{bare, message, text_child};

/// The largest `rekey_freq` (2^32 - 1, ESN-05).
const MAX_REKEY_FREQ: u32 = u32::MAX;

/// An offer we can answer, with every choice made (ESN-12).
pub(crate) struct EvaluatedOffer {
    pub(crate) peer: String,
    pub(crate) thread: String,
    form: DataForm,
    form_a: Vec<u8>,
    n_a: Vec<u8>,
    he: Vec<u8>,
    agreed: Agreed,
    choices: Vec<(String, Vec<String>)>,
    rekey_freq: u32,
}

/// What an offer asks for.
pub(crate) enum OfferOutcome {
    /// An ESession we can establish.
    Esession(Box<EvaluatedOffer>),
    /// A plain stanza session (ESN-11): reply with this answer, no keys.
    Plain(Element),
}

/// Bob after answering, waiting for Alice's completion.
pub(crate) struct AwaitingAccept {
    pub(crate) peer: String,
    pub(crate) thread: String,
    agreed: Agreed,
    n_a: Vec<u8>,
    n_b: Vec<u8>,
    y: DhKeyPair,
    d: Vec<u8>,
    he: Vec<u8>,
    c_a: Counter,
    form_a: Vec<u8>,
    form_b: Vec<u8>,
}

/// Reads an offer and makes every choice, or says which error to send (SSN-08, ESN-08/09, AMB-52).
pub(crate) fn evaluate(
    config: &Config,
    from: &str,
    thread: &str,
    x: &Element,
    form: &DataForm,
) -> Result<OfferOutcome, Refusal> {
    if form.form_type_value() != Some(ns::SSN) || form.kind != FormKind::Form {
        return Err(Refusal::new(ErrorCondition::ServiceUnavailable, &[]));
    }
    // Unknown required fields take precedence (AMB-52).
    let unknown: Vec<&str> = form
        .fields
        .iter()
        .filter(|f| f.required)
        .filter_map(|f| f.var.as_deref())
        .filter(|var| !KNOWN_OFFER_FIELDS.contains(var))
        .collect();
    if !unknown.is_empty() {
        return Err(Refusal::new(
            ErrorCondition::FeatureNotImplemented,
            &unknown,
        ));
    }
    // ESN-08: a 3-message offer (dhkeys) from a responder configured for 4 messages.
    if form.field(DHKEYS).is_some() {
        return Err(Refusal::new(
            ErrorCondition::FeatureNotImplemented,
            &[DHKEYS],
        ));
    }
    let mut bad: Vec<&str> = Vec::new();
    let accept = form.field(ACCEPT).and_then(|f| {
        ranked(f)
            .first()
            .map(|v| esession_wire::form::parse_bool(v))
    });
    if accept != Some(Ok(true)) {
        bad.push(ACCEPT);
    }
    let options = |var: &str| form.field(var).map(ranked);

    // logging (AMB-01 legacy `otr`); absent means `may` (ARC-03).
    let logging = match (options(LOGGING), options(OTR)) {
        (Some(values), _) => values
            .iter()
            .filter_map(|v| Logging::from_value(v))
            .find(|l| config.logging.contains(l)),
        (None, Some(values)) => values
            .first()
            .and_then(|v| esession_wire::form::parse_bool(v).ok())
            .map(Logging::from_legacy_otr)
            .filter(|l| config.logging.contains(l)),
        (None, None) => Some(Logging::May).filter(|l| config.logging.contains(l)),
    };
    if logging.is_none() {
        bad.push(LOGGING);
    }
    // ESN-53/54: `never` whenever offered; anything else only with
    // `accept_disclosure` (the user is alerted on establishment).
    let disclosure = options(DISCLOSURE).and_then(|values| {
        let mut offered = values.iter().filter_map(|v| Disclosure::from_value(v));
        let first = offered.clone().next();
        offered
            .find(|d| *d == Disclosure::Never)
            .or(first.filter(|_| config.accept_disclosure))
    });
    if disclosure.is_none() {
        bad.push(DISCLOSURE);
    }
    let security_options: Vec<Security> = options(SECURITY)
        .map(|values| {
            values
                .iter()
                .filter_map(|v| Security::from_value(v))
                .collect()
        })
        .unwrap_or_default();
    if !security_options.contains(&Security::E2e) {
        let plain = security_options
            .iter()
            .copied()
            .find(|s| *s != Security::E2e);
        if let (true, Some(plain), Some(logging), Some(disclosure), true) = (
            config.accept_plain_sessions,
            plain,
            logging,
            disclosure,
            bad.is_empty(),
        ) {
            return Ok(OfferOutcome::Plain(plain_answer(
                config, from, thread, logging, disclosure, plain,
            )));
        }
        bad.push(SECURITY);
    }

    // modp and its commitment (AMB-51: dhhashes follow the <option/>s).
    let modp_field = form.field(MODP);
    let mut group_choice: Option<(ModpGroup, String, Vec<u8>)> = None;
    if let Some(field) = modp_field {
        let option_values: Vec<&str> = field.options.iter().map(|o| o.value.as_str()).collect();
        let hashes = form
            .field(DHHASHES)
            .map(|f| f.values.clone())
            .unwrap_or_default();
        let default_ok = field
            .values
            .iter()
            .all(|v| option_values.contains(&v.as_str()));
        if !default_ok {
            bad.push(MODP);
        } else if hashes.len() != option_values.len() {
            bad.push(DHHASHES);
        } else {
            for token in ranked(field) {
                let Ok(group) = ModpGroup::from_name(token) else {
                    continue;
                };
                if !config.groups.contains(&group) {
                    continue;
                }
                let index = option_values.iter().position(|o| *o == token);
                let he = index.and_then(|i| hashes.get(i)).and_then(|h| unb64(h, 32));
                match he {
                    Some(he) if he.len() == 32 => {
                        group_choice = Some((group, token.to_owned(), he))
                    }
                    _ => bad.push(DHHASHES),
                }
                break;
            }
            if group_choice.is_none() && !bad.contains(&DHHASHES) {
                bad.push(MODP);
            }
        }
    } else {
        bad.push(MODP);
    }

    let usable_ciphers: Vec<CipherAlgorithm> = config.usable_ciphers().collect();
    let choose = |var: &str, default: &str, accept: &dyn Fn(&str) -> bool| -> Option<String> {
        match options(var) {
            Some(values) => values.into_iter().find(|v| accept(v)).map(str::to_owned),
            None => accept(default).then(|| default.to_owned()),
        }
    };
    let cipher = choose(CRYPT_ALGS, "aes128-ctr", &|v| {
        CipherAlgorithm::from_name(v).is_ok_and(|c| usable_ciphers.contains(&c))
    });
    let hash = choose(HASH_ALGS, "sha256", &|v| {
        HashAlgorithm::from_name(v).is_ok_and(|h| config.hashes.contains(&h))
    });
    let compression = choose(COMPRESS, "none", &|v| {
        CompressionAlgorithm::from_name(v).is_ok_and(|c| config.compression.contains(&c))
    });
    let sas = choose(SAS_ALGS, "sas28x5", &|v| {
        SasAlgorithm::from_name(v).is_ok_and(|s| config.sas.contains(&s))
    });
    let init_pubkey = choose(INIT_PUBKEY, "none", &|v| v == "none");
    let resp_pubkey = choose(RESP_PUBKEY, "none", &|v| v == "none");
    let ver = options(VER).and_then(|values| {
        values
            .into_iter()
            .find(|v| *v == VERSION)
            .map(str::to_owned)
    });
    // ESN-12, AMB-29: every offered kind we accept, in the offer's order.
    let mut stanza_kinds: Vec<StanzaKind> = Vec::new();
    for kind in options(STANZAS)
        .unwrap_or_default()
        .into_iter()
        .filter_map(StanzaKind::from_name)
    {
        if config.stanzas.contains(&kind) && !stanza_kinds.contains(&kind) {
            stanza_kinds.push(kind);
        }
    }
    let stanzas: Vec<String> = stanza_kinds.iter().map(|k| k.name().to_owned()).collect();
    let rekey_freq = match form.field(REKEY_FREQ) {
        None => Some(MAX_REKEY_FREQ),
        Some(_) => single(form, REKEY_FREQ)
            .and_then(|v| v.parse::<u32>().ok())
            .filter(|r| *r >= 1)
            .map(|r| r.max(config.rekey_freq)),
    };
    let n_a = single(form, MY_NONCE)
        .and_then(|v| unb64(v, MAX_NONCE_LEN))
        .filter(|n| n.len() >= config.min_peer_nonce_len);
    for (value, var) in [
        (cipher.is_some(), CRYPT_ALGS),
        (hash.is_some(), HASH_ALGS),
        (compression.is_some(), COMPRESS),
        (sas.is_some(), SAS_ALGS),
        (init_pubkey.is_some(), INIT_PUBKEY),
        (resp_pubkey.is_some(), RESP_PUBKEY),
        (ver.is_some(), VER),
        (!stanzas.is_empty(), STANZAS),
        (rekey_freq.is_some(), REKEY_FREQ),
        (n_a.is_some(), MY_NONCE),
    ] {
        if !value {
            bad.push(var);
        }
    }
    let parsed = (
        logging,
        disclosure,
        group_choice,
        cipher
            .as_deref()
            .and_then(|c| CipherAlgorithm::from_name(c).ok()),
        hash.as_deref()
            .and_then(|h| HashAlgorithm::from_name(h).ok()),
        compression
            .as_deref()
            .and_then(|c| CompressionAlgorithm::from_name(c).ok()),
        rekey_freq,
        n_a,
    );
    let (
        Some(logging),
        Some(disclosure),
        Some((group, group_token, he)),
        Some(cipher_alg),
        Some(hash_alg),
        Some(compression_alg),
        Some(rekey_freq),
        Some(n_a),
    ) = parsed
    else {
        return Err(Refusal::new(ErrorCondition::NotAcceptable, &bad));
    };
    if !bad.is_empty() {
        return Err(Refusal::new(ErrorCondition::NotAcceptable, &bad));
    }
    if esession_crypto::kdf::check_hash_covers_cipher(hash_alg, cipher_alg).is_err() {
        return Err(Refusal::new(ErrorCondition::NotAcceptable, &[HASH_ALGS]));
    }
    let form_a = try_normalize_form_content(x, &[])
        .map_err(|_| Refusal::new(ErrorCondition::NotAcceptable, &[]))?;

    // The answer: one choice per received field, in received order (ESN-14).
    let mut choices: Vec<(String, Vec<String>)> = Vec::new();
    for field in &form.fields {
        let Some(var) = field.var.as_deref() else {
            continue;
        };
        let answer: Option<Vec<String>> = match var {
            FORM_TYPE => Some(vec![ns::SSN.to_owned()]),
            ACCEPT => Some(vec!["1".to_owned()]),
            LOGGING => Some(vec![logging.value().to_owned()]),
            OTR => Some(vec![(logging == Logging::MustNot).to_string()]),
            DISCLOSURE => Some(vec![disclosure.value().to_owned()]),
            SECURITY => Some(vec![Security::E2e.value().to_owned()]),
            MODP => Some(vec![group_token.clone()]),
            CRYPT_ALGS => cipher.clone().map(|v| vec![v]),
            HASH_ALGS => hash.clone().map(|v| vec![v]),
            COMPRESS => compression.clone().map(|v| vec![v]),
            SAS_ALGS => sas.clone().map(|v| vec![v]),
            STANZAS => Some(stanzas.clone()),
            INIT_PUBKEY | RESP_PUBKEY => Some(vec!["none".to_owned()]),
            VER => Some(vec![VERSION.to_owned()]),
            REKEY_FREQ => Some(vec![rekey_freq.to_string()]),
            MY_NONCE => Some(Vec::new()), // filled with N_B by `answer`
            DHHASHES => Some(Vec::new()), // replaced by dhkeys (ESN-14)
            _ => None,
        };
        if let Some(values) = answer {
            choices.push((var.to_owned(), values));
        }
    }
    Ok(OfferOutcome::Esession(Box::new(EvaluatedOffer {
        peer: from.to_owned(),
        thread: thread.to_owned(),
        form: form.clone(),
        form_a,
        n_a,
        he,
        agreed: Agreed {
            group,
            cipher: cipher_alg,
            hash: hash_alg,
            compression: compression_alg,
            logging,
            disclosure,
            stanzas: stanza_kinds,
        },
        choices,
        rekey_freq,
    })))
}

/// ESN-11: accept a plain stanza session with the offered `security`.
fn plain_answer(
    config: &Config,
    to: &str,
    thread: &str,
    logging: Logging,
    disclosure: Disclosure,
    security: Security,
) -> Element {
    let form = DataForm::new(FormKind::Submit)
        .with_field(Field::untyped(FORM_TYPE, vec![ns::SSN.to_owned()]))
        .with_field(Field::untyped(ACCEPT, vec!["1".to_owned()]))
        .with_field(Field::untyped(LOGGING, vec![logging.value().to_owned()]))
        .with_field(Field::untyped(
            DISCLOSURE,
            vec![disclosure.value().to_owned()],
        ))
        .with_field(Field::untyped(SECURITY, vec![security.value().to_owned()]));
    wrap(config, to, thread, "feature", ns::FEATURE_NEG, &form)
}

fn wrap(
    config: &Config,
    to: &str,
    thread: &str,
    wrapper: &str,
    wrapper_ns: &str,
    form: &DataForm,
) -> Element {
    let mut stanza = message(to, config.own_jid.as_deref(), None);
    stanza.append_child(text_child("thread", ns::JABBER_CLIENT, thread));
    let mut outer = Element::bare(wrapper, wrapper_ns);
    outer.append_child(Element::from(form));
    stanza.append_child(outer);
    stanza
}

impl EvaluatedOffer {
    /// The offer's form, for echoing in an error reply.
    pub(crate) fn form(&self) -> &DataForm {
        &self.form
    }

    /// Message 2 (ESN-13/14): N_B, C_A, y, d and the answer form.
    pub(crate) fn answer(
        self,
        ctx: &mut Context<'_>,
    ) -> Result<(AwaitingAccept, Element), Refusal> {
        let mut n_b = vec![0u8; ctx.config.nonce_len.max(16)];
        ctx.rng.fill(RandomPurpose::Nonce, &mut n_b);
        let mut c_a_bytes = [0u8; 16];
        ctx.rng.fill(RandomPurpose::Counter, &mut c_a_bytes);
        let c_a = Counter::new(u128::from_be_bytes(c_a_bytes));
        let y = ctx
            .rng
            .dh_key_pair(self.agreed.group, ctx.config.exponent_size);
        let d = y.public().to_mpi().to_vec();

        let mut answer = DataForm::new(FormKind::Submit);
        for (var, values) in self.choices {
            let field = match var.as_str() {
                MY_NONCE => Field::untyped(MY_NONCE, vec![b64(&n_b)]),
                DHHASHES => Field::untyped(DHKEYS, vec![b64(&d)]),
                _ => Field::untyped(&var, values),
            };
            answer = answer.with_field(field);
        }
        answer = answer
            .with_field(Field::untyped(NONCE, vec![b64(&self.n_a)]))
            .with_field(Field::untyped(COUNTER, vec![b64(&c_a.to_bytes())]));
        let x = Element::from(&answer);
        let form_b = try_normalize_form_content(&x, &[]).map_err(|_| Refusal::crypto())?;
        let mut stanza = message(&self.peer, ctx.config.own_jid.as_deref(), None);
        stanza.append_child(text_child("thread", ns::JABBER_CLIENT, &self.thread));
        let mut feature = Element::bare("feature", ns::FEATURE_NEG);
        feature.append_child(x);
        stanza.append_child(feature);
        let _ = self.rekey_freq;
        Ok((
            AwaitingAccept {
                peer: self.peer,
                thread: self.thread,
                agreed: self.agreed,
                n_a: self.n_a,
                n_b,
                y,
                d,
                he: self.he,
                c_a,
                form_a: self.form_a,
                form_b,
            },
            stanza,
        ))
    }
}

impl AwaitingAccept {
    /// Message 3 -> message 4 (ESN-31..41).
    pub(crate) fn on_accept(
        self,
        ctx: &mut Context<'_>,
        x: &Element,
        form: &DataForm,
    ) -> Result<(EstablishedSession, Element, SessionInfo), StepError> {
        if form.form_type_value() != Some(ns::SSN) {
            return Err(Refusal::crypto().into());
        }
        match (form.kind, form.field(ACCEPT).map(|f| f.as_bool())) {
            // SSN-12: the initiator cancels.
            (FormKind::Result, Some(Ok(false))) | (FormKind::Cancel, _) => {
                return Err(StepError::Declined);
            }
            (FormKind::Result, Some(Ok(true))) => {}
            _ => return Err(Refusal::crypto().into()),
        }
        let hash = self.agreed.hash;
        let value = |var: &str, max: usize| single(form, var).and_then(|v| unb64(v, max));
        let (Some(nonce), Some(e_bytes), Some(identity), Some(m_a)) = (
            value(NONCE, MAX_NONCE_LEN),
            value(DHKEYS, 1024),
            value(IDENTITY, 4096),
            value(MAC, 64),
        ) else {
            return Err(Refusal::crypto().into());
        };
        let rshashes: Vec<Vec<u8>> = match form.field(RSHASHES) {
            Some(field) => field.values.iter().filter_map(|v| unb64(v, 64)).collect(),
            None => Vec::new(),
        };
        if !ct_eq(&nonce, &self.n_b) {
            return Err(Refusal::crypto().into());
        }
        // ESN-31: the commitment and the range of e.
        let e = DhPublicValue::from_bytes(self.agreed.group, &e_bytes)
            .map_err(|_| Refusal::crypto())?;
        if !ct_eq(&e.commitment(), &self.he) {
            return Err(Refusal::crypto().into());
        }
        let e_mpi = e.to_mpi().to_vec();
        let Self {
            y,
            agreed,
            n_a,
            n_b,
            d,
            c_a,
            form_a,
            form_b,
            peer,
            thread,
            ..
        } = self;
        let raw = y.agree(&e).map_err(|_| Refusal::crypto())?;
        let k = negotiation_secret(hash, &raw);
        drop(raw);
        let provisional =
            SessionKeys::derive(hash, agreed.cipher, &k).map_err(|_| Refusal::crypto())?;

        // ESN-32: verify Alice with form_A2.
        let form_a2 =
            try_normalize_form_content(x, &[IDENTITY, MAC]).map_err(|_| Refusal::crypto())?;
        let mut c_a_after = c_a;
        let initiator = IdentityKeys {
            cipher: agreed.cipher,
            hash,
            kc: &provisional.initiator.cipher,
            km: &provisional.initiator.mac,
            ks: &provisional.initiator.sigma,
        };
        sigma::open(
            &initiator,
            &mut c_a_after,
            &[&n_b, &n_a, &e_mpi, &form_a, &form_a2],
            &identity,
            &m_a,
        )?;
        let sas = sas28x5(hash, &m_a, &form_b);

        // ESN-35: a retained secret of one of Alice's clients.
        let peer_bare = bare(&peer).to_owned();
        let stored = ctx.trust.retained_secrets(&peer_bare);
        let matched = ctx
            .read(stored)
            .into_iter()
            .filter(|rs| unexpired(ctx.config, ctx.clock, rs.created))
            .find(|rs| {
                let expected = retained_secret_hash(hash, &n_a, &rs.secret);
                rshashes.iter().any(|h| ct_eq(h, &expected))
            })
            .map(|rs| RetainedMatch {
                secret: rs.secret,
                verified: rs.verified,
            });
        let other = ctx.trust.other_secret(&peer_bare);
        let other = ctx.read(other);
        let k_final = final_shared_secret(
            hash,
            &k,
            matched.as_ref().map(|m| &m.secret),
            other.as_ref(),
        );
        drop(k);
        let keys =
            SessionKeys::derive(hash, agreed.cipher, &k_final).map_err(|_| Refusal::crypto())?;

        // ESN-37/38/39: srshash and Bob's identity under the final keys.
        let srshash = match &matched {
            Some(m) => shared_retained_secret_hash(hash, &m.secret),
            None => {
                let mut placeholder = vec![0u8; hash.output_len()];
                ctx.rng
                    .fill(RandomPurpose::SrshashPlaceholder, &mut placeholder);
                placeholder
            }
        };
        let mut final_form = DataForm::new(FormKind::Result)
            .with_field(Field::untyped(FORM_TYPE, vec![ns::SSN.to_owned()]))
            .with_field(Field::untyped(NONCE, vec![b64(&n_a)]))
            .with_field(Field::untyped(SRSHASH, vec![b64(&srshash)]));
        let form_b2 = try_normalize_form_content(&Element::from(&final_form), &[])
            .map_err(|_| Refusal::crypto())?;
        let c_b = c_a.flip_top_bit();
        let mut c_b_after = c_b;
        let responder = IdentityKeys {
            cipher: agreed.cipher,
            hash,
            kc: &keys.responder.cipher,
            km: &keys.responder.mac,
            ks: &keys.responder.sigma,
        };
        let sealed = sigma::seal(
            &responder,
            &mut c_b_after,
            &[&n_a, &n_b, &d, &form_b, &form_b2],
        )?;
        final_form = final_form
            .with_field(Field::untyped(IDENTITY, vec![b64(&sealed.identity)]))
            .with_field(Field::untyped(MAC, vec![b64(&sealed.m)]));
        let stanza = wrap(
            ctx.config,
            &peer,
            &thread,
            "init",
            ns::ESESSION_INIT,
            &final_form,
        );

        // ESN-40/42, AMB-57: new retained secret, confirmed on Alice's first stanza.
        let verified = matched.as_ref().is_some_and(|m| m.verified);
        let client = ctx.store_new_retained_secret(&peer, hash, &k_final, verified);
        // The rshash match is only a claim until Alice's first stanza proves
        // she holds K_final (AMB-57): an attacker can replay an old N_A and
        // rshashes. Until then the session is reported as not authenticated.
        let info = SessionInfo {
            sas,
            authenticated_by_retained_secret: false,
            retained_chain_verified: false,
            other_secret_used: other.is_some(),
            sas_reminder: true,
            logging: agreed.logging,
            disclosure: agreed.disclosure,
            group: agreed.group,
            cipher: agreed.cipher,
            hash,
            compression: agreed.compression,
            stanzas: agreed.stanzas.clone(),
            we_initiated: false,
        };
        let send = Direction::new(
            agreed.cipher,
            hash,
            &keys.responder.cipher,
            &keys.responder.mac,
            c_b_after,
        )
        .map_err(Refusal::from)?;
        let receive = Direction::new(
            agreed.cipher,
            hash,
            &keys.initiator.cipher,
            &keys.initiator.mac,
            c_a_after,
        )
        .map_err(Refusal::from)?;
        let session = EstablishedSession::new(SessionSetup {
            id: SessionId { peer, thread },
            info: info.clone(),
            own_jid: ctx.config.own_jid.clone(),
            send,
            receive,
            pad_to_multiple: ctx.config.pad_to_multiple,
            max_plaintext_len: ctx.config.max_plaintext_len,
            unconfirmed_secret: Some((peer_bare, client)),
            pending_retained_claim: matched.as_ref().map(|m| m.verified),
        });
        Ok((session, stanza, info))
    }
}
