//! Bob's side: evaluating an offer (message 1), the answer (message 2), and
//! checking Alice's completion to send the final `<init/>` (messages 3-4).

use esession_crypto::dh::negotiation_secret;
use esession_crypto::kdf::{SessionKeys, final_shared_secret, shared_retained_secret_hash};
use esession_crypto::{
    CipherAlgorithm, CompressionAlgorithm, Counter, DhKeyPair, DhPublicValue, HashAlgorithm,
    ModpGroup, SasAlgorithm, SignatureAlgorithm, ct_eq,
};
use esession_wire::form::{DataForm, Field, FormKind};
use esession_wire::minidom::Element;
use esession_wire::negotiation::{Completion, CompletionFields, Offer, Offered};
use esession_wire::ns;
use jid::Jid;

use super::establish::{Agreement, establish};
use super::fields::*;
use super::{
    Agreed, Context, Refusal, b64, have_peer_key, judge_peer_key, own_proof, peer_methods, secrets,
    unb64,
};
use super::{StepError, open_identity, session_info};
use crate::config::{Config, PubkeyMethod, ResponderChoice};
use crate::event::{SecurityAlert, SessionId, SessionInfo};
use crate::identity::{self, IdentityKeys, IdentityProof, Transcript};
use crate::profile::Profile;
use crate::random::RandomPurpose;
use crate::session::EstablishedSession;
use crate::ssn::{Disclosure, ErrorCondition, Logging, Security};
use crate::stanza::StanzaKind;
use crate::stanza::{message, text_child};

/// The largest `rekey_freq` (2^32 - 1, ESN-05).
const MAX_REKEY_FREQ: u32 = u32::MAX;

/// An offer we can answer, with every choice made (ESN-12).
pub(crate) struct EvaluatedOffer {
    /// The peer's wire profile.
    pub(crate) profile: Profile,
    pub(crate) peer: Jid,
    pub(crate) thread: String,
    form: DataForm,
    form_a: Vec<u8>,
    n_a: Vec<u8>,
    he: Vec<u8>,
    agreed: Agreed,
    choices: Vec<(String, Vec<String>)>,
    rekey_freq: u32,
}

impl EvaluatedOffer {
    /// The group the answer would compute in.
    pub(crate) fn group(&self) -> esession_crypto::ModpGroup {
        self.agreed.group
    }

    /// The compression the answer would agree.
    pub(crate) fn compression(&self) -> esession_crypto::CompressionAlgorithm {
        self.agreed.compression
    }
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
    accepting: Accepting,
    flow: Flow,
}

/// What Bob keeps until Alice's completion in both flows.
struct Accepting {
    /// The peer's wire profile.
    profile: Profile,
    peer: Jid,
    thread: String,
    agreed: Agreed,
    n_a: Vec<u8>,
    n_b: Vec<u8>,
    d: Vec<u8>,
    c_a: Counter,
    form_a: Vec<u8>,
    form_b: Vec<u8>,
    /// The agreed `rekey_freq` (ENC-14).
    rekey_freq: u32,
}

impl AwaitingAccept {
    /// The compression the session will use.
    pub(crate) fn compression(&self) -> esession_crypto::CompressionAlgorithm {
        self.accepting.agreed.compression
    }

    /// The full JID that answered.
    pub(crate) fn peer(&self) -> &Jid {
        &self.accepting.peer
    }

    /// The session's thread.
    pub(crate) fn thread(&self) -> &str {
        &self.accepting.thread
    }

    /// The peer's wire profile.
    pub(crate) fn profile(&self) -> Profile {
        self.accepting.profile
    }
}

/// What Bob keeps until Alice's completion.
enum Flow {
    /// 4 messages: y and Alice's commitment He (ESN-31).
    Four { y: DhKeyPair, he: Vec<u8> },
    /// 3 messages: what the completion needs (boxed: it is large).
    Three(Box<ThreeFlow>),
}

/// Bob's 3-message state: the session keys, e, and C_B after ID_B (ESN-13,
/// ESN-43); y and Alice's e stay for XEP-0200 rekeying (ENC-15, ENC-18).
struct ThreeFlow {
    keys: SessionKeys,
    e: Vec<u8>,
    c_b: Counter,
    y: DhKeyPair,
    e_value: DhPublicValue,
}

/// Bob's result of Alice's completion.
pub(crate) struct Accepted {
    pub(crate) session: EstablishedSession,
    /// Message 4 (4 messages only).
    pub(crate) reply: Option<Element>,
    pub(crate) info: SessionInfo,
    /// ESN-29: Alice asked to end the session at once (one-shot, 3 messages).
    pub(crate) terminate: bool,
}

/// What refuses an offer before its options are read (AMB-52, ESN-08):
/// not an SSN form, an unknown required field, a 3-message offer we do not
/// accept. Returns whether the offer is for 3 messages (AMB-07).
fn check_offer_form(config: &Config, form: &DataForm) -> Result<(Offer, bool), Refusal> {
    let offer =
        Offer::try_from(form).map_err(|_| Refusal::new(ErrorCondition::ServiceUnavailable, &[]))?;
    // Unknown required fields take precedence (AMB-52).
    if !offer.unknown_required.is_empty() {
        let unknown: Vec<&str> = offer.unknown_required.iter().map(String::as_str).collect();
        return Err(Refusal::new(
            ErrorCondition::FeatureNotImplemented,
            &unknown,
        ));
    }
    // ESN-08: a 3-message offer (dhkeys, AMB-07) to a responder configured for 4 messages.
    if offer.dhkeys.is_some() && !config.accept_three_message {
        return Err(Refusal::new(
            ErrorCondition::FeatureNotImplemented,
            &[DHKEYS],
        ));
    }
    let three_message = offer.is_three_message();
    Ok((offer, three_message))
}

/// The `logging` we accept (ARC-04, ARC-07; AMB-01 legacy `otr`); absent
/// means `may` (ARC-03).
fn choose_logging(policy: &Policy<'_>, offer: &Offer) -> Option<Logging> {
    let offered: Vec<Logging> = match (&offer.logging, offer.otr) {
        (Some(values), _) => values.iter().flatten().copied().collect(),
        (None, Some(otr)) => otr.map(Logging::from_legacy_otr).into_iter().collect(),
        (None, None) => Vec::new(),
    };
    // A field whose every option is unknown offers nothing we could pick.
    if offered.is_empty() && (offer.logging.is_some() || offer.otr.is_some()) {
        return None;
    }
    crate::archiving::logging_to_accept(
        policy.otr_policy,
        &offered,
        policy.config.off_the_record_possible,
    )
    .ok()
}

/// ESN-53/54: `never` whenever offered; anything else only with
/// `accept_disclosure` (the user is alerted on establishment).
fn choose_disclosure(
    config: &Config,
    offered: Option<&[Option<Disclosure>]>,
) -> Option<Disclosure> {
    offered.and_then(|values| {
        let mut offered = values.iter().flatten().copied();
        let first = offered.clone().next();
        offered
            .find(|d| *d == Disclosure::Never)
            .or(first.filter(|_| config.accept_disclosure))
    })
}

/// The MODP group we compute in, its option token and Alice's commitment
/// for it (He, or e with 3 messages); a bad field is pushed to `bad`.
fn choose_group(
    config: &Config,
    offer: &Offer,
    three_message: bool,
    bad: &mut Vec<&'static str>,
) -> Option<(ModpGroup, String, Vec<u8>)> {
    // modp and its commitment (AMB-51: dhhashes, or dhkeys with 3 messages,
    // follow the <option/>s).
    let Some(modp) = &offer.modp else {
        bad.push(MODP);
        return None;
    };
    let (commitments_var, commitments) = if three_message {
        (DHKEYS, &offer.dhkeys)
    } else {
        (DHHASHES, &offer.dhhashes)
    };
    let commitments: &[String] = commitments.as_deref().unwrap_or_default();
    if !modp.defaults_are_options {
        bad.push(MODP);
        return None;
    }
    if commitments.len() != modp.options.len() {
        bad.push(commitments_var);
        return None;
    }
    // Issue 11: the group is ours to choose among the acceptable ones
    // offered (our order of `Config::groups`, or the peer's with
    // `ResponderChoice::Peers`), so that a stranger cannot make us
    // compute in the most expensive group when a cheaper acceptable
    // one was offered (CONFORMANCE.md, "Readings").
    let offered: Vec<(&str, ModpGroup)> = modp
        .ranked
        .iter()
        .filter_map(|o| o.value.map(|g| (o.token.as_str(), g)))
        .filter(|(_, g)| config.groups.contains(g))
        .collect();
    let pick = match config.responder_choice {
        ResponderChoice::Peers => offered.first().copied(),
        ResponderChoice::Ours => config
            .groups
            .iter()
            .find_map(|ours| offered.iter().find(|(_, g)| g == ours).copied()),
    };
    let Some((token, group)) = pick else {
        bad.push(MODP);
        return None;
    };
    let max = if three_message { 1024 } else { 32 };
    let commitment = modp
        .option_index(token)
        .and_then(|i| commitments.get(i))
        .and_then(|c| unb64(c, max));
    match commitment {
        Some(he) if he.len() == 32 || three_message => Some((group, token.to_owned(), he)),
        _ => {
            bad.push(commitments_var);
            None
        }
    }
}

/// The algorithms we answer with (wire names), each `None` when nothing
/// offered is acceptable.
struct Algorithms {
    cipher: Option<String>,
    hash: Option<String>,
    compression: Option<String>,
    sas: Option<String>,
}

impl Algorithms {
    /// The cipher, hash and compression as typed values.
    fn parsed(
        &self,
    ) -> (
        Option<CipherAlgorithm>,
        Option<HashAlgorithm>,
        Option<CompressionAlgorithm>,
    ) {
        (
            self.cipher
                .as_deref()
                .and_then(|c| CipherAlgorithm::from_name(c).ok()),
            self.hash
                .as_deref()
                .and_then(|h| HashAlgorithm::from_name(h).ok()),
            self.compression
                .as_deref()
                .and_then(|c| CompressionAlgorithm::from_name(c).ok()),
        )
    }
}

/// The cipher that really runs for the advertised one (issue 6), which the
/// hash must be long enough to key; with 3 messages, Alice's e for `group`
/// must be in range (ESN-12: 1 < e < p-1, else feature-not-implemented).
fn check_keys(
    profile: Profile,
    advertised: CipherAlgorithm,
    hash: HashAlgorithm,
    three_message_e: Option<(ModpGroup, &[u8])>,
) -> Result<CipherAlgorithm, Refusal> {
    let cipher = profile.effective_cipher(advertised);
    if esession_crypto::kdf::check_hash_covers_cipher(hash, cipher).is_err() {
        return Err(Refusal::new(ErrorCondition::NotAcceptable, &[HASH_ALGS]));
    }
    if let Some((group, e)) = three_message_e
        && DhPublicValue::from_bytes(group, e).is_err()
    {
        return Err(Refusal::new(
            ErrorCondition::FeatureNotImplemented,
            &[DHKEYS],
        ));
    }
    Ok(cipher)
}

/// Chooses cipher, hash, compression and SAS among the offered options.
fn choose_algorithms(config: &Config, offer: &Offer, three_message: bool) -> Algorithms {
    let usable_ciphers: Vec<CipherAlgorithm> = config.usable_ciphers().collect();
    let cipher = choose(&offer.crypt_algs, CipherAlgorithm::Aes128Ctr, |c| {
        usable_ciphers.contains(c)
    });
    let hash = choose(&offer.hash_algs, HashAlgorithm::Sha256, |h| {
        config.hashes.contains(h)
    });
    // Issue 11: compression costs memory per session (a zlib context each
    // way); among what the peer offers, ours is the choice.
    let compression = match (config.responder_choice, &offer.compress) {
        (ResponderChoice::Ours, Some(values)) => config
            .compression
            .iter()
            .find(|ours| values.iter().any(|o| o.token == ours.name()))
            .map(|c| c.name().to_owned()),
        _ => choose(&offer.compress, CompressionAlgorithm::None, |c| {
            config.compression.contains(c)
        }),
    };
    // A 3-message offer has no sas_algs (there is no SAS); answer one if sent.
    let sas = match (three_message, &offer.sas_algs) {
        (true, None) => Some(String::new()),
        _ => choose(&offer.sas_algs, SasAlgorithm::Sas28x5, |s| {
            config.sas.contains(s)
        }),
    };
    Algorithms {
        cipher,
        hash,
        compression,
        sas,
    }
}

/// The first offered option we accept, as sent; when the field is absent,
/// its default if we accept that.
fn choose<T: Copy + WireName>(
    offered: &Option<Vec<Offered<T>>>,
    default: T,
    accept: impl Fn(&T) -> bool,
) -> Option<String> {
    match offered {
        Some(options) => options
            .iter()
            .find(|o| o.value.as_ref().is_some_and(&accept))
            .map(|o| o.token.clone()),
        None => accept(&default).then(|| default.wire_name().to_owned()),
    }
}

/// The wire name of an algorithm, for [`choose`]'s defaults.
trait WireName {
    fn wire_name(self) -> &'static str;
}

macro_rules! wire_name_is_name {
    ($($ty:ty),*) => {
        $(impl WireName for $ty {
            fn wire_name(self) -> &'static str {
                self.name()
            }
        })*
    };
}

wire_name_is_name!(
    CipherAlgorithm,
    HashAlgorithm,
    CompressionAlgorithm,
    SasAlgorithm
);

/// What our policy answers to an ESession offer, every choice made.
pub(crate) struct Choices {
    logging: Logging,
    disclosure: Disclosure,
    group: ModpGroup,
    /// The `modp` option as Alice spelled it.
    group_token: String,
    /// Alice's commitment for `group`: He, or e with 3 messages.
    commitment: Vec<u8>,
    cipher: CipherAlgorithm,
    hash: HashAlgorithm,
    compression: CompressionAlgorithm,
    /// The algorithms' answers as Alice spelled them.
    algorithms: Algorithms,
    stanza_kinds: Vec<StanzaKind>,
    /// `stanza_kinds` by name.
    stanzas: Vec<String>,
    pubkeys: PubkeyChoice,
    rekey_freq: u32,
    /// N_A.
    n_a: Vec<u8>,
}

/// What our policy answers to an offer.
pub(crate) enum Choice {
    /// A plain stanza session (ESN-11).
    Plain(Logging, Disclosure, Security),
    /// An ESession.
    Esession(Box<Choices>),
}

/// What the answer is chosen by: our configuration, the peer's wire profile,
/// and whether we hold a key for the peer (it decides `init_pubkey`).
pub(crate) struct Policy<'a> {
    pub(crate) config: &'a Config,
    pub(crate) profile: Profile,
    pub(crate) peer_key_known: bool,
    /// The offer is Alice's XEP-0187 option set (AMB-34): it has no `accept`
    /// and no pubkey fields; she is proven by its `signs`, we identify with `key`.
    pub(crate) offline: bool,
    /// The off-the-record policy for this contact (ARC-04).
    pub(crate) otr_policy: crate::archiving::OtrPolicy,
}

/// Chooses the answer to `offer` under `policy`, or the refusal naming every
/// unusable field in the order of the answer (ESN-08/09/11/12, AMB-52). Pure:
/// no store, no randomness, no keys computed.
pub(crate) fn choose_answer(
    policy: &Policy<'_>,
    offer: &Offer,
    three_message: bool,
) -> Result<Choice, Refusal> {
    let config = policy.config;
    let mut bad: Vec<&str> = Vec::new();
    let (logging, disclosure) = read_terms(policy, offer, &mut bad);
    // ESN-11: an offer without e2e is a plain stanza session, if we accept those.
    if let Some(plain) = plain_security(offer.security.as_deref()) {
        if let (true, Some(plain), Some(logging), Some(disclosure), true) = (
            config.accept_plain_sessions,
            plain,
            logging,
            disclosure,
            bad.is_empty(),
        ) {
            return Ok(Choice::Plain(logging, disclosure, plain));
        }
        bad.push(SECURITY);
    }
    let group_choice = choose_group(config, offer, three_message, &mut bad);
    let algorithms = choose_algorithms(config, offer, three_message);
    let pubkeys = if policy.offline {
        offline_pubkeys(config, offer, &mut bad)
    } else {
        choose_pubkeys(
            config,
            policy.peer_key_known,
            offer,
            three_message,
            &mut bad,
        )
    };
    let parameters = read_parameters(config, offer, policy.profile.version);
    note_unusable(&algorithms, &parameters, &mut bad);
    let (cipher, hash, compression) = algorithms.parsed();
    let (
        Some(logging),
        Some(disclosure),
        Some((group, group_token, commitment)),
        Some(cipher),
        Some(hash),
        Some(compression),
        Some(rekey_freq),
        Some(n_a),
        Some(pubkeys),
        true,
    ) = (
        logging,
        disclosure,
        group_choice,
        cipher,
        hash,
        compression,
        parameters.rekey_freq,
        parameters.n_a,
        pubkeys,
        bad.is_empty(),
    )
    else {
        return Err(Refusal::new(ErrorCondition::NotAcceptable, &bad));
    };
    Ok(Choice::Esession(Box::new(Choices {
        logging,
        disclosure,
        group,
        group_token,
        commitment,
        cipher,
        hash,
        compression,
        algorithms,
        stanza_kinds: parameters.stanza_kinds,
        stanzas: parameters.stanzas,
        pubkeys,
        rekey_freq,
        n_a,
    })))
}

/// The answer's values: one choice per received field, in received order
/// (ESN-14); fields we do not know are left out.
fn answer_choices(offer: &Offer, profile: Profile, chosen: &Choices) -> Vec<(String, Vec<String>)> {
    let mut choices: Vec<(String, Vec<String>)> = Vec::new();
    for var in offer.vars.iter().map(String::as_str) {
        let answer: Option<Vec<String>> = match var {
            FORM_TYPE => Some(vec![ns::SSN.to_owned()]),
            ACCEPT => Some(vec![profile.answer_accept.to_owned()]),
            LOGGING => Some(vec![chosen.logging.value().to_owned()]),
            OTR => Some(vec![(chosen.logging == Logging::MustNot).to_string()]),
            DISCLOSURE => Some(vec![chosen.disclosure.value().to_owned()]),
            SECURITY => Some(vec![Security::E2e.value().to_owned()]),
            MODP => Some(vec![chosen.group_token.clone()]),
            CRYPT_ALGS => chosen.algorithms.cipher.clone().map(|v| vec![v]),
            HASH_ALGS => chosen.algorithms.hash.clone().map(|v| vec![v]),
            COMPRESS => chosen.algorithms.compression.clone().map(|v| vec![v]),
            SAS_ALGS => chosen.algorithms.sas.clone().map(|v| vec![v]),
            STANZAS => Some(chosen.stanzas.clone()),
            INIT_PUBKEY => Some(vec![chosen.pubkeys.init.value().to_owned()]),
            RESP_PUBKEY => Some(vec![chosen.pubkeys.resp.value().to_owned()]),
            SIGN_ALGS => chosen.pubkeys.sign_token.clone().map(|v| vec![v]),
            VER => Some(vec![profile.version.to_owned()]),
            REKEY_FREQ => Some(vec![chosen.rekey_freq.to_string()]),
            MY_NONCE => Some(Vec::new()), // filled with N_B by `answer`
            DHHASHES => Some(Vec::new()), // replaced by dhkeys (ESN-14)
            DHKEYS => Some(Vec::new()),   // Bob's d replaces Alice's e (ESN-14)
            _ => None,
        };
        if let Some(values) = answer {
            choices.push((var.to_owned(), values));
        }
    }
    choices
}

/// When an offer does not allow `e2e`: `Some(the plain mode offered, if any)`
/// (ESN-11); `None` when `e2e` is offered.
fn plain_security(offered: Option<&[Option<Security>]>) -> Option<Option<Security>> {
    let security_options: Vec<Security> = offered
        .map(|values| values.iter().flatten().copied().collect())
        .unwrap_or_default();
    if security_options.contains(&Security::E2e) {
        return None;
    }
    Some(
        security_options
            .iter()
            .copied()
            .find(|s| *s != Security::E2e),
    )
}

/// The rest of an offer's parameters, each `None` (or empty) when unusable.
struct Parameters {
    ver: Option<String>,
    stanza_kinds: Vec<StanzaKind>,
    /// `stanza_kinds` by name, for the answer.
    stanzas: Vec<String>,
    rekey_freq: Option<u32>,
    n_a: Option<Vec<u8>>,
}

/// Reads `ver` (ours: `version`), `stanzas`, `rekey_freq` and N_A.
fn read_parameters(config: &Config, offer: &Offer, version: &str) -> Parameters {
    let ver = offer
        .ver
        .as_ref()
        .and_then(|values| values.iter().find(|v| *v == version).cloned());
    // ESN-12, AMB-29: every offered kind we accept, in the offer's order.
    let mut stanza_kinds: Vec<StanzaKind> = Vec::new();
    for kind in offer.stanzas.iter().flatten().flatten() {
        if config.stanzas.contains(kind) && !stanza_kinds.contains(kind) {
            stanza_kinds.push(*kind);
        }
    }
    let stanzas: Vec<String> = stanza_kinds.iter().map(|k| k.name().to_owned()).collect();
    let rekey_freq = match &offer.rekey_freq {
        None => Some(MAX_REKEY_FREQ),
        Some(value) => value
            .as_valid()
            .copied()
            .filter(|r| *r >= 1)
            .map(|r| r.max(config.rekey_freq)),
    };
    let n_a = offer
        .my_nonce
        .as_valid()
        .filter(|n| n.len() >= config.min_peer_nonce_len)
        .cloned();
    Parameters {
        ver,
        stanza_kinds,
        stanzas,
        rekey_freq,
        n_a,
    }
}

/// `accept`, `logging` and `disclosure` of an offer; what is unusable goes
/// to `bad`, in this order.
fn read_terms(
    policy: &Policy<'_>,
    offer: &Offer,
    bad: &mut Vec<&'static str>,
) -> (Option<Logging>, Option<Disclosure>) {
    let config = policy.config;
    // XEP-0187 options carry no `accept` (OFF-02).
    if !policy.offline && offer.accept != Some(true) {
        bad.push(ACCEPT);
    }
    let logging = choose_logging(policy, offer);
    if logging.is_none() {
        bad.push(LOGGING);
    }
    let disclosure = choose_disclosure(config, offer.disclosure.as_deref());
    if disclosure.is_none() {
        bad.push(DISCLOSURE);
    }
    (logging, disclosure)
}

/// Adds to `bad`, in the order of the answer's fields, what no acceptable
/// option was found for among the algorithms and parameters.
fn note_unusable(algorithms: &Algorithms, parameters: &Parameters, bad: &mut Vec<&'static str>) {
    for (value, var) in [
        (algorithms.cipher.is_some(), CRYPT_ALGS),
        (algorithms.hash.is_some(), HASH_ALGS),
        (algorithms.compression.is_some(), COMPRESS),
        (algorithms.sas.is_some(), SAS_ALGS),
        (parameters.ver.is_some(), VER),
        (!parameters.stanzas.is_empty(), STANZAS),
        (parameters.rekey_freq.is_some(), REKEY_FREQ),
        (parameters.n_a.is_some(), MY_NONCE),
    ] {
        if !value {
            bad.push(var);
        }
    }
}

/// Reads an offer and makes every choice, or says which error to send (SSN-08, ESN-08/09, AMB-52).
pub(crate) fn evaluate(
    ctx: &mut Context<'_>,
    from: &Jid,
    thread: &str,
    x: &Element,
    form: DataForm,
) -> Result<OfferOutcome, Refusal> {
    let (offer, three_message) = check_offer_form(ctx.config, &form)?;
    choose_for(ctx, from, thread, (x, form), (offer, three_message), false)
}

/// XEP-0187 as the sender (OFF-09, AMB-34): Alice's published option set,
/// already checked ([`crate::offline`]), read as her 3-message offer and
/// answered by our policy. It must be an ESession offer in the 3-message
/// flow; anything else is unusable.
pub(crate) fn evaluate_options(
    ctx: &mut Context<'_>,
    to: &Jid,
    thread: &str,
    x: &Element,
    form: &DataForm,
) -> Result<EvaluatedOffer, Refusal> {
    let offer =
        Offer::try_from(form).map_err(|_| Refusal::new(ErrorCondition::NotAcceptable, &[]))?;
    if !offer.unknown_required.is_empty() || !offer.is_three_message() {
        return Err(Refusal::new(
            ErrorCondition::FeatureNotImplemented,
            &[DHKEYS],
        ));
    }
    match choose_for(ctx, to, thread, (x, form.clone()), (offer, true), true)? {
        OfferOutcome::Esession(evaluated) => Ok(*evaluated),
        OfferOutcome::Plain(_) => Err(Refusal::new(ErrorCondition::NotAcceptable, &[SECURITY])),
    }
}

/// Makes every choice for a read offer under our policy (see [`evaluate`]).
fn choose_for(
    ctx: &mut Context<'_>,
    from: &Jid,
    thread: &str,
    (x, form): (&Element, DataForm),
    (offer, three_message): (Offer, bool),
    offline: bool,
) -> Result<OfferOutcome, Refusal> {
    let policy_offline = offline;
    let policy = Policy {
        config: ctx.config,
        profile: ctx.profile,
        peer_key_known: have_peer_key(ctx, from),
        offline,
        otr_policy: ctx.config.otr_policy_for(from.as_str()),
    };
    let chosen = match choose_answer(&policy, &offer, three_message)? {
        Choice::Plain(logging, disclosure, security) => {
            return Ok(OfferOutcome::Plain(plain_answer(
                ctx.config,
                from.as_str(),
                thread,
                logging,
                disclosure,
                security,
            )));
        }
        Choice::Esession(chosen) => chosen,
    };
    let profile = ctx.profile;
    let cipher = check_keys(
        profile,
        chosen.cipher,
        chosen.hash,
        three_message.then_some((chosen.group, &chosen.commitment)),
    )?;
    let form_a = profile
        .normalize(x, &[])
        .map_err(|_| Refusal::new(ErrorCondition::NotAcceptable, &[]))?;
    // The answer: one choice per received field, in received order (ESN-14).
    let choices = answer_choices(&offer, profile, &chosen);
    let Choices {
        logging,
        disclosure,
        group,
        commitment,
        hash,
        compression,
        stanza_kinds,
        pubkeys,
        rekey_freq,
        n_a,
        ..
    } = *chosen;
    Ok(OfferOutcome::Esession(Box::new(EvaluatedOffer {
        profile,
        peer: from.clone(),
        thread: thread.to_owned(),
        form,
        form_a,
        n_a,
        he: commitment,
        agreed: Agreed {
            group,
            cipher,
            hash,
            compression,
            logging,
            disclosure,
            three_message,
            init_pubkey: pubkeys.init,
            resp_pubkey: pubkeys.resp,
            sign_alg: pubkeys.sign_alg,
            stanzas: stanza_kinds,
            offline: policy_offline,
        },
        choices,
        rekey_freq,
    })))
}

/// Alice's 4-message completion, read and checked against her commitment.
struct FourCompletion {
    e: DhPublicValue,
    /// ID_A, still encrypted.
    identity: Vec<u8>,
    m_a: Vec<u8>,
    rshashes: Vec<Vec<u8>>,
}

/// What Bob's final message (4) is made of, for [`final_message`].
struct FinalInputs<'a> {
    profile: Profile,
    agreed: &'a Agreed,
    peer: &'a Jid,
    thread: &'a str,
    n_a: &'a [u8],
    n_b: &'a [u8],
    /// MPI(d).
    d: &'a [u8],
    form_b: &'a [u8],
    /// C_B before Bob's identity.
    c_b: Counter,
}

/// Message 4 (ESN-37..39): the srshash of the matched retained secret (or a
/// random placeholder), then ID_B and M_B under the final `keys`; returns
/// the stanza and C_B after the identity.
fn final_message(
    ctx: &mut Context<'_>,
    inputs: FinalInputs<'_>,
    matched: Option<&super::RetainedMatch>,
    keys: &SessionKeys,
) -> Result<(Element, Counter), Refusal> {
    let agreed = inputs.agreed;
    let hash = agreed.hash;
    let srshash = match matched {
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
        .with_field(Field::untyped(NONCE, vec![b64(inputs.n_a)]))
        .with_field(Field::untyped(SRSHASH, vec![b64(&srshash)]));
    let form_b2 = inputs
        .profile
        .normalize(&Element::from(&final_form), &[])
        .map_err(|_| Refusal::crypto())?;
    let mut c_b_after = inputs.c_b;
    let responder = IdentityKeys::of(inputs.profile, agreed.cipher, hash, &keys.responder);
    let proof =
        own_proof(ctx.config, agreed.resp_pubkey, agreed.sign_alg).ok_or_else(Refusal::crypto)?;
    let sealed = identity::seal(
        &responder,
        &mut c_b_after,
        &Transcript {
            head: &[inputs.n_a, inputs.n_b, inputs.d],
            tail: &[inputs.form_b, &form_b2],
        },
        proof,
    )
    .map_err(Refusal::from)?;
    final_form = final_form
        .with_field(Field::untyped(IDENTITY, vec![b64(&sealed.identity)]))
        .with_field(Field::untyped(MAC, vec![b64(&sealed.m)]));
    let stanza = wrap(
        ctx.config,
        inputs.peer.as_str(),
        inputs.thread,
        "init",
        ns::ESESSION_INIT,
        &final_form,
    );
    Ok((stanza, c_b_after))
}

/// Bob's identification choices (ESN-14, ESN-17).
struct PubkeyChoice {
    init: PubkeyMethod,
    resp: PubkeyMethod,
    sign_alg: Option<SignatureAlgorithm>,
    /// The `sign_algs` value to answer, as Alice spelled it.
    sign_token: Option<String>,
}

/// Chooses `init_pubkey` (what Bob demands from Alice, his preference among her
/// options), `resp_pubkey` (how Bob identifies, Alice's preference among what
/// he can do) and `sign_algs`. A 3-message offer must not offer `none` (ESN-03).
/// Unusable fields are added to `bad`.
fn choose_pubkeys(
    config: &Config,
    peer_key_known: bool,
    offer: &Offer,
    three_message: bool,
    bad: &mut Vec<&'static str>,
) -> Option<PubkeyChoice> {
    // An absent field offers `none` only.
    let offered = |methods: &Option<Vec<Option<PubkeyMethod>>>| {
        methods
            .clone()
            .unwrap_or_else(|| vec![Some(PubkeyMethod::None)])
    };
    let (init_offer, resp_offer) = (offered(&offer.init_pubkey), offered(&offer.resp_pubkey));
    let algs: Vec<(String, SignatureAlgorithm)> = offer
        .sign_algs
        .iter()
        .flatten()
        .filter_map(|o| {
            o.value
                .filter(|a| config.sign_algs.contains(a))
                .map(|a| (o.token.clone(), a))
        })
        .collect();
    let signing = algs
        .iter()
        .find(|(_, a)| config.signing_key(*a).is_some())
        .cloned();
    let init = peer_methods(config, peer_key_known)
        .into_iter()
        .filter(|m| !(three_message && *m == PubkeyMethod::None))
        .find(|m| init_offer.contains(&Some(*m)));
    let resp = resp_offer.iter().flatten().copied().find(|m| match m {
        PubkeyMethod::None => !three_message && config.own_identification.contains(m),
        _ => config.own_identification.contains(m) && signing.is_some(),
    });
    let mut ok = true;
    for (choice, list, var) in [
        (init, &init_offer, INIT_PUBKEY),
        (resp, &resp_offer, RESP_PUBKEY),
    ] {
        // ESN-03: `none` must not be offered with 3 messages.
        let none_offered = three_message && list.contains(&Some(PubkeyMethod::None));
        if choice.is_none() || none_offered {
            bad.push(var);
            ok = false;
        }
    }
    let (init, resp) = (init?, resp?);
    let (sign_token, sign_alg) = match (resp, init, &signing, algs.first()) {
        (PubkeyMethod::Key | PubkeyMethod::Hash, _, Some((t, a)), _) => (Some(t.clone()), Some(*a)),
        (PubkeyMethod::None, PubkeyMethod::Key | PubkeyMethod::Hash, _, Some((t, a))) => {
            (Some(t.clone()), Some(*a))
        }
        (PubkeyMethod::None, PubkeyMethod::None, _, first) => (first.map(|(t, _)| t.clone()), None),
        _ => {
            bad.push(SIGN_ALGS);
            return None;
        }
    };
    ok.then_some(PubkeyChoice {
        init,
        resp,
        sign_alg,
        sign_token,
    })
}

/// XEP-0187 (OFF-09, AMB-34): Alice's options have no pubkey fields. She is
/// proven by the option set's `signs`, checked before we get here; we
/// identify with `key` (as if `resp_pubkey=key`) under an offered algorithm
/// we hold a signing key for. Neither choice is answered (no pubkey field in
/// form_B).
fn offline_pubkeys(
    config: &Config,
    offer: &Offer,
    bad: &mut Vec<&'static str>,
) -> Option<PubkeyChoice> {
    let signing = offer.sign_algs.iter().flatten().find_map(|o| {
        o.value
            .filter(|a| config.sign_algs.contains(a) && config.signing_key(*a).is_some())
            .map(|a| (o.token.clone(), a))
    });
    let Some((token, algorithm)) =
        signing.filter(|_| config.own_identification.contains(&PubkeyMethod::Key))
    else {
        bad.push(SIGN_ALGS);
        return None;
    };
    Some(PubkeyChoice {
        init: PubkeyMethod::Key,
        resp: PubkeyMethod::Key,
        sign_alg: Some(algorithm),
        sign_token: Some(token),
    })
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
    /// Takes the offer's form out (for the echo of a refusal), leaving an
    /// empty one: answering does not read it (issue 16: no copy per answer).
    pub(crate) fn take_form(&mut self) -> DataForm {
        let kind = self.form.kind;
        core::mem::replace(&mut self.form, DataForm::new(kind))
    }

    /// Message 2 (ESN-13/14): N_B, C_A, y, d and the answer form; with 3
    /// messages also K, the keys and Bob's identity (ESN-15..24).
    pub(crate) fn answer(
        self,
        ctx: &mut Context<'_>,
    ) -> Result<(AwaitingAccept, Element), Refusal> {
        self.answer_as(ctx, None)
    }

    /// XEP-0187 (OFF-10, AMB-73): the answer to Alice's published options as
    /// the offline `<init/>` stanza: a `submit` form with our choices, d,
    /// N_A, the counter and, for a one-shot, `terminate=1`, then our
    /// identity. Call [`AwaitingAccept::establish_offline`] next.
    pub(crate) fn answer_offline(
        self,
        ctx: &mut Context<'_>,
        one_shot: bool,
    ) -> Result<(AwaitingAccept, Element), Refusal> {
        self.answer_as(ctx, Some(one_shot))
    }

    /// The answer, online (`offline` is `None`) or offline (`Some(one_shot)`).
    fn answer_as(
        self,
        ctx: &mut Context<'_>,
        offline: Option<bool>,
    ) -> Result<(AwaitingAccept, Element), Refusal> {
        let profile = self.profile;
        let mut n_b = vec![0u8; ctx.config.own_nonce_len(&profile)];
        ctx.rng.fill(RandomPurpose::Nonce, &mut n_b);
        let mut c_a_bytes = [0u8; 16];
        ctx.rng.fill(RandomPurpose::Counter, &mut c_a_bytes);
        let c_a = profile.responder_counter(c_a_bytes);
        let y = ctx
            .rng
            .dh_key_pair(self.agreed.group, ctx.config.exponent_size);
        let d = y.public().to_mpi().to_vec();

        let mut answer = DataForm::new(FormKind::Submit);
        for (var, values) in self.choices {
            let field = match var.as_str() {
                MY_NONCE => Field::untyped(MY_NONCE, vec![b64(&n_b)]),
                DHHASHES | DHKEYS => Field::untyped(DHKEYS, vec![b64(&d)]),
                _ => Field::untyped(&var, values),
            };
            answer = answer.with_field(field);
        }
        answer = answer
            .with_field(Field::untyped(NONCE, vec![b64(&self.n_a)]))
            .with_field(Field::untyped(
                COUNTER,
                vec![b64(&profile.counter_field.encode(c_a))],
            ));
        if offline == Some(true) {
            // AMB-73: before our identity, so that the MAC covers it.
            answer = answer.with_field(Field::untyped(TERMINATE, vec!["1".to_owned()]));
        }
        let form_b = profile
            .normalize(&Element::from(&answer), &[])
            .map_err(|_| Refusal::crypto())?;
        let agreed = self.agreed;
        let flow = if agreed.three_message {
            // ESN-13: K = HASH(MPI(e^y mod p)) (e was range-checked in `evaluate`).
            let e = DhPublicValue::from_bytes(agreed.group, &self.he)
                .map_err(|_| Refusal::new(ErrorCondition::FeatureNotImplemented, &[DHKEYS]))?;
            // y stays for XEP-0200 rekeying (ENC-18: Alice's first <key/> uses it).
            let raw = y.agree_keeping(&e).map_err(|_| Refusal::crypto())?;
            let k = negotiation_secret(agreed.hash, &raw);
            drop(raw);
            let keys = SessionKeys::derive(agreed.hash, agreed.cipher, &k)
                .map_err(|_| Refusal::crypto())?;
            drop(k);
            // ESN-17..24: Bob's identity, appended before sending (ESN-15, ESN-23).
            let proof = own_proof(ctx.config, agreed.resp_pubkey, agreed.sign_alg)
                .ok_or_else(Refusal::crypto)?;
            let mut c_b = c_a.flip_top_bit();
            let responder = IdentityKeys::of(profile, agreed.cipher, agreed.hash, &keys.responder);
            let sealed = identity::seal(
                &responder,
                &mut c_b,
                &Transcript {
                    head: &[&self.n_a, &n_b, &d],
                    tail: &[&form_b],
                },
                proof,
            )?;
            answer = answer
                .with_field(Field::untyped(IDENTITY, vec![b64(&sealed.identity)]))
                .with_field(Field::untyped(MAC, vec![b64(&sealed.m)]));
            Flow::Three(Box::new(ThreeFlow {
                keys,
                e: e.to_mpi().to_vec(),
                c_b,
                y,
                e_value: e,
            }))
        } else {
            Flow::Four { y, he: self.he }
        };
        let stanza = match offline {
            None => wrap(
                ctx.config,
                self.peer.as_str(),
                &self.thread,
                "feature",
                ns::FEATURE_NEG,
                &answer,
            ),
            Some(_) => wrap(
                ctx.config,
                self.peer.as_str(),
                &self.thread,
                "init",
                ns::ESESSION_INIT,
                &answer,
            ),
        };
        Ok((
            AwaitingAccept {
                accepting: Accepting {
                    profile,
                    peer: self.peer,
                    thread: self.thread,
                    agreed,
                    n_a: self.n_a,
                    n_b,
                    d,
                    c_a,
                    form_a: self.form_a,
                    form_b,
                    rekey_freq: self.rekey_freq,
                },
                flow,
            },
            stanza,
        ))
    }
}

impl AwaitingAccept {
    /// XEP-0187 (OFF-10): after the offline `<init/>` the negotiation is
    /// complete for us. Alice proved herself by the signature on her
    /// options (`proof`, made by [`crate::offline`]) with `signer`, one of
    /// her keys the user verified (AMB-69); she will finish on her return.
    pub(crate) fn establish_offline(
        self,
        ctx: &mut Context<'_>,
        proof: IdentityProof,
        signer: esession_wire::keyvalue::KeyValue,
    ) -> Result<(EstablishedSession, SessionInfo), Refusal> {
        let Flow::Three(three) = self.flow else {
            return Err(Refusal::crypto());
        };
        let ThreeFlow {
            keys,
            c_b,
            y,
            e_value,
            ..
        } = *three;
        let accepting = self.accepting;
        let peer_key = judge_peer_key(ctx, &accepting.peer, Some(signer))?;
        let info = session_info(ctx, &accepting.agreed, String::new(), peer_key, false);
        let session = establish(
            ctx,
            proof,
            Agreement {
                profile: accepting.profile,
                id: SessionId {
                    peer: accepting.peer,
                    thread: accepting.thread,
                },
                info: info.clone(),
                cipher: accepting.agreed.cipher,
                hash: accepting.agreed.hash,
                keys: &keys,
                c_a: accepting.c_a,
                c_b,
                rekey_freq: accepting.rekey_freq,
                own_pair: y,
                peer_value: e_value,
                unconfirmed_secret: None,
                pending_retained_claim: None,
            },
        )?;
        Ok((session, info))
    }

    /// Message 3: with 4 messages -> message 4 (ESN-31..41); with 3 messages
    /// the negotiation ends here (ESN-32).
    pub(crate) fn on_accept(
        self,
        ctx: &mut Context<'_>,
        x: &Element,
        form: &DataForm,
    ) -> Result<Accepted, StepError> {
        let fields = match Completion::try_from(form) {
            Ok(Completion::Accepted(fields)) => fields,
            // SSN-12: the initiator cancels.
            Ok(Completion::Declined) => return Err(StepError::Declined),
            Err(_) => return Err(Refusal::crypto().into()),
        };
        // ARC-05/07: our policy or our archive may have changed since we
        // answered (a refused archive change, say): not completed.
        let accepting = &self.accepting;
        if !ctx
            .config
            .logging_still_allowed(accepting.peer.as_str(), accepting.agreed.logging)
        {
            return Err(Refusal::new(ErrorCondition::NotAcceptable, &[LOGGING]).into());
        }
        match self.flow {
            Flow::Three(three) => self.accepting.on_accept_three(ctx, *three, x, fields),
            Flow::Four { y, he } => self.accepting.on_accept_four(ctx, y, he, x, fields),
        }
    }
}

impl Accepting {
    /// ESN-29, ESN-32 (3 messages): Alice's identity completes the negotiation.
    fn on_accept_three(
        self,
        ctx: &mut Context<'_>,
        three: ThreeFlow,
        x: &Element,
        fields: CompletionFields,
    ) -> Result<Accepted, StepError> {
        let ThreeFlow {
            keys,
            e,
            c_b,
            y,
            e_value,
        } = three;
        let agreed = self.agreed;
        let (Some(nonce), Some(identity), Some(m_a)) = (fields.nonce, fields.identity, fields.mac)
        else {
            return Err(Refusal::crypto().into());
        };
        if !ct_eq(&nonce, &self.n_b) {
            return Err(Refusal::crypto().into());
        }
        let terminate = fields.terminate.map_err(|_| Refusal::crypto())?;
        let form_a2 = self
            .profile
            .normalize(x, &[IDENTITY, MAC])
            .map_err(|_| Refusal::crypto())?;
        let mut c_a = self.c_a;
        let initiator = IdentityKeys::of(self.profile, agreed.cipher, agreed.hash, &keys.initiator);
        let peer_identity = open_identity(
            ctx,
            &initiator,
            &mut c_a,
            &Transcript {
                head: &[&self.n_b, &self.n_a, &e],
                tail: &[&self.form_a, &form_a2],
            },
            (agreed.init_pubkey, agreed.sign_alg),
            &identity,
            &m_a,
        )?;
        let peer_key = judge_peer_key(ctx, &self.peer, peer_identity.key)?;
        let info = session_info(ctx, &agreed, String::new(), peer_key, false);
        let session = establish(
            ctx,
            peer_identity.proof,
            Agreement {
                profile: self.profile,
                id: SessionId {
                    peer: self.peer,
                    thread: self.thread,
                },
                info: info.clone(),
                cipher: agreed.cipher,
                hash: agreed.hash,
                keys: &keys,
                c_a,
                c_b,
                rekey_freq: self.rekey_freq,
                own_pair: y,
                peer_value: e_value,
                unconfirmed_secret: None,
                pending_retained_claim: None,
            },
        )?;
        Ok(Accepted {
            session,
            reply: None,
            info,
            terminate,
        })
    }

    /// Message 3 of the 4-message flow, read (ESN-31): N_B echoed, e in
    /// range and matching Alice's commitment He.
    fn read_four_completion(
        &self,
        fields: CompletionFields,
        he: &[u8],
    ) -> Result<FourCompletion, Refusal> {
        let (Some(nonce), Some(e_bytes), Some(identity), Some(m_a)) =
            (fields.nonce, fields.dhkeys, fields.identity, fields.mac)
        else {
            return Err(Refusal::crypto());
        };
        let rshashes = fields.rshashes;
        if !ct_eq(&nonce, &self.n_b) {
            return Err(Refusal::crypto());
        }
        // ESN-31: the commitment and the range of e.
        let e = DhPublicValue::from_bytes(self.agreed.group, &e_bytes)
            .map_err(|_| Refusal::crypto())?;
        if !ct_eq(&e.commitment(), he) {
            return Err(Refusal::crypto());
        }
        Ok(FourCompletion {
            e,
            identity,
            m_a,
            rshashes,
        })
    }

    /// K from y and Alice's e, then Alice's identity under the provisional
    /// keys with form_A2 (ESN-32). Returns K, the verified identity and C_A
    /// after it. (y stays for XEP-0200 rekeying: ENC-18.)
    fn verify_alice(
        &self,
        ctx: &mut Context<'_>,
        y: &DhKeyPair,
        completion: &FourCompletion,
        x: &Element,
    ) -> Result<
        (
            esession_crypto::SecretBytes,
            identity::VerifiedIdentity,
            Counter,
        ),
        StepError,
    > {
        let (profile, agreed) = (self.profile, &self.agreed);
        let raw = y
            .agree_keeping(&completion.e)
            .map_err(|_| Refusal::crypto())?;
        let k = negotiation_secret(agreed.hash, &raw);
        drop(raw);
        let provisional =
            SessionKeys::derive(agreed.hash, agreed.cipher, &k).map_err(|_| Refusal::crypto())?;
        let form_a2 = profile
            .normalize(x, &[IDENTITY, MAC])
            .map_err(|_| Refusal::crypto())?;
        let mut c_a_after = self.c_a;
        let initiator =
            IdentityKeys::of(profile, agreed.cipher, agreed.hash, &provisional.initiator);
        let e_mpi = completion.e.to_mpi().to_vec();
        let peer_identity = open_identity(
            ctx,
            &initiator,
            &mut c_a_after,
            &Transcript {
                head: &[&self.n_b, &self.n_a, &e_mpi],
                tail: &[&self.form_a, &form_a2],
            },
            (agreed.init_pubkey, agreed.sign_alg),
            &completion.identity,
            &completion.m_a,
        )?;
        Ok((k, peer_identity, c_a_after))
    }

    /// Message 3 -> message 4 (ESN-31..41).
    fn on_accept_four(
        self,
        ctx: &mut Context<'_>,
        y: DhKeyPair,
        he: Vec<u8>,
        x: &Element,
        fields: CompletionFields,
    ) -> Result<Accepted, StepError> {
        let hash = self.agreed.hash;
        let completion = self.read_four_completion(fields, &he)?;
        let (k, peer_identity, c_a_after) = self.verify_alice(ctx, &y, &completion, x)?;
        let FourCompletion {
            e, m_a, rshashes, ..
        } = completion;
        let Self {
            profile,
            agreed,
            n_a,
            n_b,
            d,
            c_a,
            form_b,
            peer,
            thread,
            rekey_freq,
            ..
        } = self;
        let peer_key = judge_peer_key(ctx, &peer, peer_identity.key)?;
        let sas = profile.sas(hash, &m_a, &form_b);

        // ESN-35: a retained secret of one of Alice's clients, then (SHOULD)
        // one retained with another JID, bounded (secrets.rs).
        let peer_bare = peer.to_bare().as_str().to_owned();
        let (matched, broken) = secrets::responder_match(ctx, &peer_bare, hash, &n_a, &rshashes);
        let other = secrets::other_shared_secret(ctx, &peer_bare);
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
        let (stanza, c_b_after) = final_message(
            ctx,
            FinalInputs {
                profile,
                agreed: &agreed,
                peer: &peer,
                thread: &thread,
                n_a: &n_a,
                n_b: &n_b,
                d: &d,
                form_b: &form_b,
                c_b: c_a.flip_top_bit(),
            },
            matched.as_ref(),
            &keys,
        )?;

        // ESN-40/42, AMB-57: new retained secret, confirmed on Alice's first stanza.
        let verified = matched.as_ref().is_some_and(|m| m.verified);
        let client = ctx.store_new_retained_secret(&peer, hash, &k_final, verified);
        // The rshash match is only a claim until Alice's first stanza proves
        // she holds K_final (AMB-57): an attacker can replay an old N_A and
        // rshashes. Until then the session is reported as not authenticated.
        let mut info = session_info(ctx, &agreed, sas, peer_key, false);
        info.other_secret_used = other.is_some();
        if let Some(broken) = broken {
            ctx.alerts
                .push(SecurityAlert::RetainedSecretNotProven(broken.clone()));
            info.broken_chain = Some(broken);
        }
        let session = establish(
            ctx,
            peer_identity.proof,
            Agreement {
                profile,
                id: SessionId { peer, thread },
                info: info.clone(),
                cipher: agreed.cipher,
                hash,
                keys: &keys,
                c_a: c_a_after,
                c_b: c_b_after,
                rekey_freq,
                own_pair: y,
                peer_value: e,
                unconfirmed_secret: Some((peer_bare, client)),
                pending_retained_claim: matched.as_ref().map(|m| m.verified),
            },
        )?;
        Ok(Accepted {
            session,
            reply: Some(stanza),
            info,
            terminate: false,
        })
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

    use esession_crypto::ModpGroup;
    use esession_wire::form::{DataForm, Field};

    use super::*;
    use crate::negotiation::testing::{ALICE, BOB, Env, form_of, jid, small};

    /// Alice's offer under `config`, as Bob parses it.
    fn offer_from(config: Config) -> (Element, DataForm) {
        let mut alice = Env::new(ALICE, config, 1);
        let (_, stanza) =
            crate::negotiation::initiator::offer(&mut alice.ctx(), &jid(BOB), "t".into())
                .expect("an offer");
        let x = form_of(&stanza);
        let form = DataForm::try_from(&x).unwrap();
        (x, form)
    }

    fn refusal(result: Result<OfferOutcome, Refusal>) -> (ErrorCondition, Vec<String>) {
        match result {
            Err(r) => (r.condition, r.fields),
            Ok(_) => panic!("accepted"),
        }
    }

    #[test]
    fn a_genuine_offer_is_evaluated_into_our_choices() {
        let (x, form) = offer_from(small());
        let mut bob = Env::new(BOB, small(), 2);
        let Ok(OfferOutcome::Esession(offer)) =
            evaluate(&mut bob.ctx(), &jid(ALICE), "t", &x, form.clone())
        else {
            panic!("not an ESession offer");
        };
        assert_eq!(offer.group(), ModpGroup::Group1, "our first group");
        assert_eq!(offer.compression(), CompressionAlgorithm::None);
    }

    #[test]
    fn the_answer_is_chosen_from_the_offer_and_our_policy_alone() {
        let (_, form) = offer_from(small());
        let offer = Offer::try_from(&form).unwrap();
        let config = small();
        let policy = Policy {
            config: &config,
            profile: Profile::standard(),
            peer_key_known: false,
            offline: false,
            otr_policy: crate::archiving::OtrPolicy::Prefer,
        };
        let Ok(Choice::Esession(chosen)) = choose_answer(&policy, &offer, false) else {
            panic!("an ESession answer");
        };
        assert_eq!(chosen.group, ModpGroup::Group1);
        assert_eq!(chosen.cipher, CipherAlgorithm::Aes128Ctr);
        assert_eq!(chosen.hash, HashAlgorithm::Sha256);
        assert_eq!(chosen.logging, Logging::May);
        assert_eq!(chosen.pubkeys.init, PubkeyMethod::None);
        assert_eq!(chosen.commitment.len(), 32, "He of the chosen group");
        // The same offer under a policy with no group in common: modp is named.
        let strict = Config {
            groups: vec![ModpGroup::Group18],
            ..small()
        };
        let policy = Policy {
            config: &strict,
            ..policy
        };
        let Err(refusal) = choose_answer(&policy, &offer, false) else {
            panic!("no common group");
        };
        assert_eq!(refusal.condition, ErrorCondition::NotAcceptable);
        assert_eq!(refusal.fields, [MODP]);
    }

    #[test]
    fn an_unknown_required_field_is_refused_by_name_first() {
        // AMB-52: feature-not-implemented naming it, before anything else.
        let (_, form) = offer_from(small());
        let form = form.with_field(Field::text_single("x-future", "1").required());
        assert_eq!(
            check_offer_form(&small(), &form)
                .map(|_| ())
                .map_err(|r| (r.condition, r.fields)),
            Err((
                ErrorCondition::FeatureNotImplemented,
                vec!["x-future".to_owned()]
            ))
        );
    }

    #[test]
    fn a_three_message_offer_needs_our_consent() {
        // ESN-08: dhkeys to a responder without accept_three_message.
        let (_, form) = offer_from(small());
        let form = form.with_field(Field::hidden(DHKEYS, vec!["AQ==".to_owned()]));
        let refused = check_offer_form(&small(), &form).map_err(|r| (r.condition, r.fields));
        assert_eq!(
            refused,
            Err((
                ErrorCondition::FeatureNotImplemented,
                vec![DHKEYS.to_owned()]
            ))
        );
    }

    /// An SSN offer form with `field` only, read.
    fn offer_of(field: Field) -> Offer {
        let form = DataForm::new(esession_wire::form::FormKind::Form)
            .with_field(Field::hidden(FORM_TYPE, [ns::SSN]))
            .with_field(field);
        Offer::try_from(&form).unwrap()
    }

    #[test]
    fn logging_and_disclosure_follow_our_policy() {
        let mut config = small();
        // ARC-07: only with the server's archive confirmed off.
        config.off_the_record_possible = true;
        let policy = Policy {
            config: &config,
            profile: Profile::standard(),
            peer_key_known: false,
            offline: false,
            otr_policy: crate::archiving::OtrPolicy::Concede,
        };
        // ARC-04 `concede`: the offer's first choice; `otr` is the legacy name (AMB-01).
        assert_eq!(
            choose_logging(
                &policy,
                &offer_of(Field::list_single(LOGGING, ["mustnot", "may"]))
            ),
            Some(Logging::MustNot)
        );
        assert_eq!(
            choose_logging(
                &policy,
                &offer_of(Field::list_single(LOGGING, ["may", "mustnot"]))
            ),
            Some(Logging::May)
        );
        assert_eq!(
            choose_logging(&policy, &offer_of(Field::untyped(OTR, ["true"]))),
            Some(Logging::MustNot)
        );
        // Absent means `may` (ARC-03).
        assert_eq!(
            choose_logging(&policy, &offer_of(Field::boolean(ACCEPT, true))),
            Some(Logging::May)
        );
        // Only unknown values: nothing to pick.
        assert_eq!(
            choose_logging(&policy, &offer_of(Field::list_single(LOGGING, ["maybe"]))),
            None
        );
        // ARC-07/SSN-03: unconfirmed, `mustnot` is never accepted.
        let unconfirmed = Config {
            off_the_record_possible: false,
            ..config.clone()
        };
        let policy = Policy {
            config: &unconfirmed,
            ..policy
        };
        assert_eq!(
            choose_logging(
                &policy,
                &offer_of(Field::list_single(LOGGING, ["mustnot", "may"]))
            ),
            Some(Logging::May)
        );
        assert_eq!(
            choose_logging(&policy, &offer_of(Field::untyped(OTR, ["true"]))),
            None
        );
        // ESN-53: `never` whenever offered; anything else needs accept_disclosure.
        assert_eq!(
            choose_disclosure(
                &config,
                Some(&[Some(Disclosure::Disabled), Some(Disclosure::Never)])
            ),
            Some(Disclosure::Never)
        );
        assert_eq!(
            choose_disclosure(&config, Some(&[Some(Disclosure::Disabled)])),
            None
        );
    }

    #[test]
    fn the_group_is_ours_to_choose_among_those_offered() {
        // Issue 11: Alice lists 2 before 1; Bob's order (1 first) decides.
        let alice = Config {
            groups: vec![ModpGroup::Group2, ModpGroup::Group1],
            ..small()
        };
        let (_, form) = offer_from(alice);
        let mut bad = Vec::new();
        let ours = choose_group(&small(), &Offer::try_from(&form).unwrap(), false, &mut bad)
            .map(|(g, _, _)| g);
        assert_eq!(ours, Some(ModpGroup::Group1));
        let peers = Config {
            responder_choice: ResponderChoice::Peers,
            ..small()
        };
        let theirs = choose_group(&peers, &Offer::try_from(&form).unwrap(), false, &mut bad)
            .map(|(g, _, _)| g);
        assert_eq!(theirs, Some(ModpGroup::Group2));
        assert!(bad.is_empty());
        // A group we do not allow: `modp` is named.
        let only_5 = Config {
            groups: vec![ModpGroup::Group5],
            ..small()
        };
        assert_eq!(
            choose_group(&only_5, &Offer::try_from(&form).unwrap(), false, &mut bad),
            None
        );
        assert_eq!(bad, [MODP]);
    }

    #[test]
    fn an_offer_without_an_acceptable_hash_is_refused_naming_hash_algs() {
        let alice = Config {
            hashes: vec![esession_crypto::HashAlgorithm::Whirlpool],
            ..small()
        };
        let (x, form) = offer_from(alice);
        let bob_config = Config {
            hashes: vec![esession_crypto::HashAlgorithm::Sha256],
            ..small()
        };
        let mut bob = Env::new(BOB, bob_config, 3);
        let (condition, fields) =
            refusal(evaluate(&mut bob.ctx(), &jid(ALICE), "t", &x, form.clone()));
        assert_eq!(condition, ErrorCondition::NotAcceptable);
        assert_eq!(fields, [HASH_ALGS]);
    }

    #[test]
    fn without_e2e_an_offer_is_a_plain_session_only_if_we_accept_those() {
        assert_eq!(
            plain_security(Some(&[Some(Security::E2e), Some(Security::C2s)])),
            None
        );
        assert_eq!(
            plain_security(Some(&[Some(Security::C2s)])),
            Some(Some(Security::C2s))
        );
        assert_eq!(plain_security(None), Some(None));
    }
}
