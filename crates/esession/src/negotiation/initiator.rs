//! Alice's side: the offer (message 1), the completion (message 3) and the
//! check of Bob's final message (message 4).

use esession_crypto::dh::negotiation_secret;
use esession_crypto::kdf::{
    SessionKeys, final_shared_secret, retained_secret_hash, shared_retained_secret_hash,
};
use esession_crypto::{
    CipherAlgorithm, CompressionAlgorithm, Counter, DhKeyPair, DhPublicValue, HashAlgorithm,
    ModpGroup, SasAlgorithm, SecretBytes, SignatureAlgorithm, ct_eq,
};
use esession_wire::form::{DataForm, Field, FormKind};
use esession_wire::minidom::Element;
use esession_wire::negotiation::{Answer as AnswerMessage, Final, Response, Single, Unreadable};
use esession_wire::ns;
use jid::Jid;

use super::establish::{Agreement, establish};
use super::fields::*;
use super::{
    Agreed, Context, Refusal, RetainedMatch, b64, have_peer_key, judge_peer_key, own_proof,
    peer_methods, unexpired, use_three_message,
};
use super::{StepError, open_identity, session_info};
use crate::config::{Config, FlowPolicy, PubkeyMethod};
use crate::event::PeerKeyInfo;
use crate::event::{BrokenChain, SecurityAlert, SessionId, SessionInfo};
use crate::identity::{self, IdentityKeys, IdentityProof, Transcript};
use crate::profile::Profile;
use crate::random::RandomPurpose;
use crate::session::EstablishedSession;
use crate::ssn::{Disclosure, ErrorCondition, Logging, Security};
use crate::stanza::StanzaKind;
use crate::stanza::{message, set_attr, text_child};

/// Alice after sending her offer, waiting for Bob's answer.
pub(crate) struct AwaitingResponse {
    /// The peer's wire profile, fixed when the offer was sent.
    pub(crate) profile: Profile,
    pub(crate) peer: Jid,
    pub(crate) thread: String,
    nonce: Vec<u8>,
    key_pairs: Vec<DhKeyPair>,
    form_a: Vec<u8>,
    ciphers: Vec<CipherAlgorithm>,
    hashes: Vec<HashAlgorithm>,
    compression: Vec<CompressionAlgorithm>,
    logging: Vec<Logging>,
    stanzas: Vec<StanzaKind>,
    rekey_freq: u32,
    /// Which flow the offer started (ESN-03).
    flow: OfferFlow,
    /// The `init_pubkey` options we offered (how we identify).
    init_offer: Vec<PubkeyMethod>,
    /// The `resp_pubkey` options we offered (what we accept from the peer).
    resp_offer: Vec<PubkeyMethod>,
    /// The `sign_algs` we offered.
    sign_algs: Vec<SignatureAlgorithm>,
}

/// The flow an offer started.
enum OfferFlow {
    /// 4 messages (SIGMA-R): the completion carries e and the rshashes.
    Four,
    /// 3 messages (SIGMA-I): content to bundle with the completion, and
    /// whether to end the session with it (ESN-29, AMB-44).
    Three {
        first_message: Option<(Element, bool)>,
    },
    /// XEP-0187: our published option set, answered while we were offline by
    /// Bob's `<init/>` (3 messages, of which we send none: OFF-16).
    Offline,
}

/// Alice's result of Bob's answer.
pub(crate) enum ResponseOutcome {
    /// 4 messages: completion sent, waiting for message 4.
    Completed(Box<AwaitingFinal>, Element),
    /// 3 messages: Bob verified; the completion (maybe with content) ends the negotiation.
    Established {
        session: Box<EstablishedSession>,
        stanza: Element,
        info: SessionInfo,
        /// The session was a one-shot: it ended with the completion (ESN-29).
        terminated: bool,
    },
    /// XEP-0187: Bob's offline `<init/>` verified; nothing to send (OFF-16).
    ReceivedOffline {
        session: Box<EstablishedSession>,
        info: SessionInfo,
    },
}

impl AwaitingResponse {
    /// Whether the offer allows zlib (the peer may choose it).
    pub(crate) fn allows_zlib(&self) -> bool {
        self.compression.contains(&CompressionAlgorithm::Zlib)
    }
}

/// Alice after sending her completion, waiting for Bob's `<init/>`.
pub(crate) struct AwaitingFinal {
    /// The peer's wire profile.
    pub(crate) profile: Profile,
    pub(crate) peer: Jid,
    pub(crate) thread: String,
    agreed: Agreed,
    n_a: Vec<u8>,
    n_b: Vec<u8>,
    d: Vec<u8>,
    k: SecretBytes,
    c_a: Counter,
    c_b: Counter,
    form_b: Vec<u8>,
    sas: String,
    /// Kept for XEP-0200 rekeying: our x, Bob's d and the agreed `rekey_freq`
    /// (ENC-15: the first rekey uses d; ENC-18: Bob's first `<key/>` uses x).
    x_pair: DhKeyPair,
    d_value: DhPublicValue,
    rekey_freq: u32,
    /// The secrets we held (and claimed in `rshashes`) when we sent message
    /// 3: if the responder proves none of them, the chain broke (issue 10).
    /// Read then, not at message 4: a session completed meanwhile (both
    /// sides offering at once) must not count as a chain to continue.
    claimed_chain: Option<BrokenChain>,
}

impl AwaitingFinal {
    /// The compression the session will use.
    pub(crate) fn compression(&self) -> CompressionAlgorithm {
        self.agreed.compression
    }
}

fn list_single(var: &str, values: impl IntoIterator<Item = String>) -> Field {
    Field::list_single(var, values)
}

/// Message 1: the offer (ESN-04..06, SSN-01, SSN-04, AMB-60).
/// Our identification offer (ESN-03/04, ESN-17): the methods we offer for
/// us and for the peer (`none` never with 3 messages) and the signature
/// algorithms, those we can sign with first.
struct Identification {
    init_offer: Vec<PubkeyMethod>,
    resp_offer: Vec<PubkeyMethod>,
    sign_algs: Vec<SignatureAlgorithm>,
    /// Some method signs: `sign_algs` is offered.
    signs: bool,
}

fn identification(
    ctx: &mut Context<'_>,
    peer: &Jid,
    three_message: bool,
) -> Result<Identification, Refusal> {
    let config = ctx.config;
    let can_sign: Vec<SignatureAlgorithm> = config
        .sign_algs
        .iter()
        .copied()
        .filter(|a| config.signing_key(*a).is_some())
        .collect();
    let mut init_offer: Vec<PubkeyMethod> = config
        .own_identification
        .iter()
        .copied()
        .filter(|m| match m {
            PubkeyMethod::None => !three_message,
            _ => !can_sign.is_empty(),
        })
        .collect();
    init_offer.dedup();
    let have_key = have_peer_key(ctx, peer);
    let resp_offer: Vec<PubkeyMethod> = peer_methods(config, have_key)
        .into_iter()
        .filter(|m| !(three_message && *m == PubkeyMethod::None))
        .collect();
    if init_offer.is_empty() || resp_offer.is_empty() {
        return Err(Refusal::new(ErrorCondition::NotAcceptable, &[]));
    }
    let signs = init_offer
        .iter()
        .chain(&resp_offer)
        .any(|m| *m != PubkeyMethod::None);
    // Algorithms we can sign with first; only those if we must sign.
    let must_sign = !init_offer.contains(&PubkeyMethod::None);
    let mut sign_algs: Vec<SignatureAlgorithm> = can_sign.clone();
    if !must_sign {
        sign_algs.extend(config.sign_algs.iter().filter(|a| !can_sign.contains(a)));
    }
    if !signs {
        sign_algs.clear();
    } else if sign_algs.is_empty() {
        return Err(Refusal::new(ErrorCondition::NotAcceptable, &[SIGN_ALGS]));
    }
    Ok(Identification {
        init_offer,
        resp_offer,
        sign_algs,
        signs,
    })
}

/// The identification part of [`offer_form`].
struct OfferedIdentification<'a> {
    init: &'a [PubkeyMethod],
    resp: &'a [PubkeyMethod],
    sign_algs: &'a [SignatureAlgorithm],
    signs: bool,
}

/// The offer's form (ESN-04..06, SSN-01, AMB-60), fields in our order.
#[allow(
    clippy::too_many_arguments,
    reason = "each is one part of the form, named"
)]
fn offer_form(
    config: &Config,
    profile: Profile,
    logging: &[Logging],
    identification: &OfferedIdentification<'_>,
    ciphers: &[CipherAlgorithm],
    nonce: &[u8],
    key_pairs: &[DhKeyPair],
    three_message: bool,
) -> DataForm {
    let mut form = DataForm::new(FormKind::Form)
        .with_field(Field::hidden(FORM_TYPE, vec![ns::SSN.to_owned()]))
        .with_field(Field::boolean(ACCEPT, true).required())
        .with_field(
            list_single(
                profile.logging_field,
                logging.iter().map(|l| l.value().to_owned()),
            )
            .required(),
        )
        .with_field(
            list_single(
                DISCLOSURE,
                config
                    .offered_disclosure()
                    .iter()
                    .map(|d| d.value().to_owned()),
            )
            .required(),
        )
        .with_field(list_single(SECURITY, ["e2e".to_owned()]).required())
        .with_field(list_single(MODP, config.groups.iter().map(|g| g.name())))
        .with_field(list_single(
            CRYPT_ALGS,
            ciphers.iter().map(|c| c.name().to_owned()),
        ))
        .with_field(list_single(
            HASH_ALGS,
            config.hashes.iter().map(|h| h.name().to_owned()),
        ));
    if identification.signs {
        form = form.with_field(list_single(
            SIGN_ALGS,
            identification.sign_algs.iter().map(|a| a.uri().to_owned()),
        ));
    }
    let value = |m: &PubkeyMethod| m.value().to_owned();
    form = form
        .with_field(list_single(
            COMPRESS,
            config.compression.iter().map(|c| c.name().to_owned()),
        ))
        .with_field(Field::list_multi(
            STANZAS,
            offered_stanzas(&config.stanzas).iter().map(|k| k.name()),
        ))
        .with_field(list_single(
            INIT_PUBKEY,
            identification.init.iter().map(value),
        ))
        .with_field(list_single(
            RESP_PUBKEY,
            identification.resp.iter().map(value),
        ))
        .with_field(list_single(VER, [profile.version.to_owned()]))
        .with_field(Field::text_single(
            REKEY_FREQ,
            config.rekey_freq.max(1).to_string(),
        ))
        .with_field(Field::hidden(MY_NONCE, vec![b64(nonce)]));
    if three_message {
        // AMB-07: e itself in `dhkeys`, no SAS.
        form.with_field(Field::hidden(
            DHKEYS,
            key_pairs
                .iter()
                .map(|p| b64(p.public().to_mpi()))
                .collect::<Vec<String>>(),
        ))
    } else {
        form.with_field(list_single(
            SAS_ALGS,
            config.sas.iter().map(|s| s.name().to_owned()),
        ))
        .with_field(Field::hidden(
            DHHASHES,
            key_pairs
                .iter()
                .map(|p| b64(&p.public().commitment()))
                .collect::<Vec<String>>(),
        ))
    }
}

pub(crate) fn offer(
    ctx: &mut Context<'_>,
    peer: &Jid,
    thread: String,
) -> Result<(AwaitingResponse, Element), Refusal> {
    let config = ctx.config;
    let ciphers: Vec<CipherAlgorithm> = config.usable_ciphers().collect();
    if ciphers.is_empty()
        || config.groups.is_empty()
        || config.hashes.is_empty()
        || config.stanzas.is_empty()
    {
        return Err(Refusal::new(ErrorCondition::NotAcceptable, &[]));
    }
    // ARC-03/07: `mustnot` only once our server's archive is known to be off.
    let logging = config
        .logging_to_offer(peer.as_str())
        .map_err(|_| Refusal::new(ErrorCondition::NotAcceptable, &[LOGGING]))?;
    // ESN-03/04: identification methods, `none` never with 3 messages.
    let three_message = use_three_message(config, peer);
    if config.initiate_flow == FlowPolicy::ThreeMessage && !three_message {
        return Err(Refusal::new(ErrorCondition::NotAcceptable, &[DHKEYS]));
    }
    let Identification {
        init_offer,
        resp_offer,
        sign_algs,
        signs,
    } = identification(ctx, peer, three_message)?;
    let config = ctx.config;
    let profile = ctx.profile;

    let (nonce, key_pairs) = fresh_secrets(ctx.rng, config, &profile);

    let form = offer_form(
        config,
        profile,
        &logging,
        &OfferedIdentification {
            init: &init_offer,
            resp: &resp_offer,
            sign_algs: &sign_algs,
            signs,
        },
        &ciphers,
        &nonce,
        &key_pairs,
        three_message,
    );
    let x = Element::from(&form);
    let form_a = profile.normalize(&x, &[]).map_err(|_| Refusal::crypto())?;

    let mut stanza = message(peer.as_str(), config.own_jid.as_deref(), None);
    stanza.append_child(text_child("thread", ns::JABBER_CLIENT, &thread));
    let mut feature = Element::bare("feature", ns::FEATURE_NEG);
    feature.append_child(x);
    stanza.append_child(feature);
    stanza.append_child(offline_drop_rule());

    let state = AwaitingResponse {
        profile,
        peer: peer.clone(),
        thread,
        nonce,
        key_pairs,
        form_a,
        ciphers,
        hashes: config.hashes.clone(),
        compression: config.compression.clone(),
        logging,
        stanzas: offered_stanzas(&config.stanzas),
        rekey_freq: config.rekey_freq.max(1),
        flow: if three_message {
            OfferFlow::Three {
                first_message: None,
            }
        } else {
            OfferFlow::Four
        },
        init_offer,
        resp_offer,
        sign_algs,
    };
    Ok((state, stanza))
}

/// An offer's secrets: a fresh nonce N_A and one key pair per configured group.
fn fresh_secrets(
    rng: &mut dyn crate::random::Randomness,
    config: &Config,
    profile: &Profile,
) -> (Vec<u8>, Vec<DhKeyPair>) {
    let mut nonce = vec![0u8; config.own_nonce_len(profile)];
    rng.fill(RandomPurpose::Nonce, &mut nonce);
    let key_pairs = config
        .groups
        .iter()
        .map(|&g| rng.dh_key_pair(g, config.exponent_size))
        .collect();
    (nonce, key_pairs)
}

/// XEP-0187's option set before it is signed (OFF-02/04, AMB-34/75): our 3-message offer with
/// every configured group's e, without `accept` and the pubkey fields, never offering `iq`
/// (only `message` when the ciphertext must go to one resource). Returns the form, N_A and
/// the key pairs (x per group), which Alice keeps until she is back.
pub(crate) fn offline_options_form(
    ctx: &mut Context<'_>,
    one_resource: bool,
) -> Result<(DataForm, Vec<u8>, Vec<DhKeyPair>), Refusal> {
    let mut config = ctx.config.clone();
    config.stanzas.retain(|k| match k {
        StanzaKind::Message => true,
        StanzaKind::Presence => !one_resource,
        StanzaKind::Iq => false,
    });
    let ciphers: Vec<CipherAlgorithm> = config.usable_ciphers().collect();
    let sign_algs: Vec<SignatureAlgorithm> = config
        .sign_algs
        .iter()
        .copied()
        .filter(|a| config.signing_key(*a).is_some())
        .collect();
    if ciphers.is_empty()
        || config.groups.is_empty()
        || config.hashes.is_empty()
        || config.stanzas.is_empty()
        || sign_algs.is_empty()
    {
        return Err(Refusal::new(ErrorCondition::NotAcceptable, &[]));
    }
    // ARC-03/07 for every contact who may write while we are away.
    let logging =
        crate::archiving::logging_to_offer(config.otr_policy, config.off_the_record_possible)
            .map_err(|_| Refusal::new(ErrorCondition::NotAcceptable, &[LOGGING]))?;
    let profile = Profile::standard();
    let (nonce, key_pairs) = fresh_secrets(ctx.rng, &config, &profile);
    let mut form = offer_form(
        &config,
        profile,
        &logging,
        &OfferedIdentification {
            init: &[PubkeyMethod::Key],
            resp: &[PubkeyMethod::Key],
            sign_algs: &sign_algs,
            signs: true,
        },
        &ciphers,
        &nonce,
        &key_pairs,
        true,
    );
    form.fields
        .retain(|f| !matches!(f.var.as_deref(), Some(ACCEPT | INIT_PUBKEY | RESP_PUBKEY)));
    Ok((form, nonce, key_pairs))
}

/// XEP-0187 (OFF-13/14): our published option set `options` as the offer
/// Bob's offline `<init/>` answers, from `peer` on `thread`: what we offered
/// is read back from the options as published, with N_A and x of the one
/// group Bob chose. Fails when the stored options are not ours to read.
pub(crate) fn offline_offer(
    options: &Element,
    nonce: &[u8],
    key_pair: DhKeyPair,
    peer: Jid,
    thread: String,
) -> Result<AwaitingResponse, Refusal> {
    let unusable = || Refusal::new(ErrorCondition::NotAcceptable, &[]);
    let form = DataForm::try_from(options).map_err(|_| unusable())?;
    let offer = esession_wire::negotiation::Offer::try_from(&form).map_err(|_| unusable())?;
    fn values<T: Copy>(offered: Option<&Vec<esession_wire::negotiation::Offered<T>>>) -> Vec<T> {
        offered
            .into_iter()
            .flatten()
            .filter_map(|o| o.value)
            .collect()
    }
    let profile = Profile::standard();
    let form_a = profile.normalize(options, &[]).map_err(|_| unusable())?;
    Ok(AwaitingResponse {
        profile,
        peer,
        thread,
        nonce: nonce.to_vec(),
        key_pairs: vec![key_pair],
        form_a,
        ciphers: values(offer.crypt_algs.as_ref()),
        hashes: values(offer.hash_algs.as_ref()),
        compression: values(offer.compress.as_ref()),
        logging: offer.logging.iter().flatten().flatten().copied().collect(),
        stanzas: offer.stanzas.iter().flatten().flatten().copied().collect(),
        rekey_freq: offer
            .rekey_freq
            .as_ref()
            .and_then(|r| r.as_valid().copied())
            .unwrap_or(1)
            .max(1),
        flow: OfferFlow::Offline,
        init_offer: vec![PubkeyMethod::Key],
        resp_offer: vec![PubkeyMethod::Key],
        sign_algs: values(offer.sign_algs.as_ref()),
    })
}

/// The configured stanza kinds, each once, in configured order (ESN-04).
fn offered_stanzas(configured: &[StanzaKind]) -> Vec<StanzaKind> {
    let mut kinds: Vec<StanzaKind> = Vec::new();
    for kind in configured {
        if !kinds.contains(kind) {
            kinds.push(*kind);
        }
    }
    kinds
}

/// AMB-29: Bob's `stanzas` answer is a non-empty subset of what we offered,
/// each kind at most once; anything else is unusable.
fn chosen_stanzas(
    answered: Option<Vec<Option<StanzaKind>>>,
    offered: &[StanzaKind],
) -> Option<Vec<StanzaKind>> {
    let mut chosen: Vec<StanzaKind> = Vec::new();
    for kind in answered? {
        let kind = kind.filter(|k| offered.contains(k))?;
        if chosen.contains(&kind) {
            return None;
        }
        chosen.push(kind);
    }
    (!chosen.is_empty()).then_some(chosen)
}

/// SSN-04 / AMB-60: never store the offer for later delivery.
fn offline_drop_rule() -> Element {
    let mut amp = Element::bare("amp", ns::AMP);
    set_attr(&mut amp, "per-hop", "true");
    let mut rule = Element::bare("rule", ns::AMP);
    set_attr(&mut rule, "action", "drop");
    set_attr(&mut rule, "condition", "deliver");
    set_attr(&mut rule, "value", "stored");
    amp.append_child(rule);
    amp
}

/// The fields of message 2, each parsed or `None` (and then named in
/// `bad`), before they are checked against our offer.
struct AnswerFields {
    /// Fields missing so far, in the order read.
    bad: Vec<&'static str>,
    logging: Option<Logging>,
    disclosure: Option<Disclosure>,
    security: Option<Security>,
    group: Option<ModpGroup>,
    cipher: Option<CipherAlgorithm>,
    hash: Option<HashAlgorithm>,
    compression: Option<CompressionAlgorithm>,
    init_pubkey: Option<PubkeyMethod>,
    resp_pubkey: Option<PubkeyMethod>,
    ver: Option<String>,
    rekey_freq: Option<u32>,
    sas: Option<SasAlgorithm>,
    n_b: Option<Vec<u8>>,
    d_bytes: Option<Vec<u8>>,
    echoed_nonce: Option<Vec<u8>>,
    counter: Option<Counter>,
    bob_identity: (Option<Vec<u8>>, Option<Vec<u8>>),
    /// Both identification choices are valid and one of them signs.
    signs: bool,
    sign_alg: Option<SignatureAlgorithm>,
    stanzas: Option<Vec<StanzaKind>>,
}

/// The value of a field of message 2, noting in `bad` when it had no single value.
fn pick<T>(bad: &mut Vec<&'static str>, var: &'static str, field: Single<T>) -> Option<T> {
    if field.is_missing() {
        bad.push(var);
    }
    field.valid()
}

impl AnswerFields {
    /// Takes every field of `answer` that `offer`'s flow expects, in the
    /// order of the refusal's field list.
    fn parse(offer: &AwaitingResponse, answer: AnswerMessage) -> Self {
        let mut bad: Vec<&str> = Vec::new();
        let b = &mut bad;
        let logging = pick(b, LOGGING, answer.logging);
        let disclosure = pick(b, DISCLOSURE, answer.disclosure);
        let security = pick(b, SECURITY, answer.security);
        let group = pick(b, MODP, answer.modp);
        let cipher = pick(b, CRYPT_ALGS, answer.crypt_algs);
        let hash = pick(b, HASH_ALGS, answer.hash_algs);
        let compression = pick(b, COMPRESS, answer.compress);
        // XEP-0187 (OFF-09, AMB-34): no pubkey field; we are proven by our
        // options' signature, Bob identifies with `key`.
        let (init_pubkey, resp_pubkey) = if offer.offline() {
            (Some(PubkeyMethod::Key), Some(PubkeyMethod::Key))
        } else {
            (
                pick(b, INIT_PUBKEY, answer.init_pubkey),
                pick(b, RESP_PUBKEY, answer.resp_pubkey),
            )
        };
        let ver = pick(b, VER, answer.ver);
        let rekey_freq = pick(b, REKEY_FREQ, answer.rekey_freq);
        // A 3-message negotiation has no SAS.
        let sas = if offer.three_message() {
            Some(SasAlgorithm::Sas28x5)
        } else {
            pick(b, SAS_ALGS, answer.sas_algs)
        };
        let n_b = pick(b, MY_NONCE, answer.my_nonce);
        let d_bytes = pick(b, DHKEYS, answer.dhkeys);
        let echoed_nonce = pick(b, NONCE, answer.nonce);
        let counter = pick(b, COUNTER, answer.counter).and_then(|c| Counter::from_wire(&c).ok());
        // ESN-23: with 3 messages Bob's identity comes with his answer.
        let bob_identity = if offer.three_message() {
            (pick(b, IDENTITY, answer.identity), pick(b, MAC, answer.mac))
        } else {
            (None, None)
        };
        // sign_algs matters only once both identification choices are valid.
        let init_pubkey = init_pubkey.filter(|m| offer.init_offer.contains(m));
        let resp_pubkey = resp_pubkey.filter(|m| offer.resp_offer.contains(m));
        let signs = matches!(
            (init_pubkey, resp_pubkey),
            (Some(i), Some(r)) if i != PubkeyMethod::None || r != PubkeyMethod::None
        );
        let sign_alg = if signs {
            pick(b, SIGN_ALGS, answer.sign_algs)
        } else {
            None
        };
        let stanzas = chosen_stanzas(answer.stanzas, &offer.stanzas);

        Self {
            bad,
            logging,
            disclosure,
            security,
            group,
            cipher,
            hash,
            compression,
            init_pubkey,
            resp_pubkey,
            ver,
            rekey_freq,
            sas,
            n_b,
            d_bytes,
            echoed_nonce,
            counter,
            bob_identity,
            signs,
            sign_alg,
            stanzas,
        }
    }
}

/// Message 2 as read by [`AwaitingResponse::read_answer`]: what Bob chose,
/// all of it offered by us.
struct Answer {
    agreed: Agreed,
    /// N_B.
    n_b: Vec<u8>,
    /// C_A, drawn by Bob (ESN-26).
    c_a: Counter,
    /// Bob's DH value, in range (ESN-26).
    d: DhPublicValue,
    rekey_freq: u32,
    /// With 3 messages: Bob's ID_B and M_B (ESN-23).
    bob_identity: (Option<Vec<u8>>, Option<Vec<u8>>),
}

impl AwaitingResponse {
    /// Sets content to send bundled with a 3-message completion (ESN-29):
    /// `terminate` ends the session with it (one-shot object encryption).
    pub(crate) fn bundle(&mut self, plain: Element, terminate: bool) -> Result<(), Refusal> {
        match &mut self.flow {
            OfferFlow::Three { first_message } => {
                *first_message = Some((plain, terminate));
                Ok(())
            }
            OfferFlow::Four | OfferFlow::Offline => {
                Err(Refusal::new(ErrorCondition::NotAcceptable, &[DHKEYS]))
            }
        }
    }

    /// Whether the offer started the 3-message flow.
    fn three_message(&self) -> bool {
        matches!(self.flow, OfferFlow::Three { .. } | OfferFlow::Offline)
    }

    /// Whether this is our XEP-0187 option set.
    fn offline(&self) -> bool {
        matches!(self.flow, OfferFlow::Offline)
    }

    /// ESN-25, ESN-26: every choice of message 2 must come from our offer;
    /// what does not is added to `f.bad`, in reading order. Returns the
    /// disclosure we offered and Bob's DH value, when acceptable.
    fn check_answer(
        &self,
        ctx: &Context<'_>,
        f: &mut AnswerFields,
    ) -> (Option<Disclosure>, Option<DhPublicValue>) {
        // ESN-25: every choice must come from the offer.
        let mut bad = std::mem::take(&mut f.bad);
        let mut check = |ok: bool, var: &'static str| {
            if !ok && !bad.contains(&var) {
                bad.push(var);
            }
        };
        // ARC-05/07: our policy or our archive may have changed since the offer.
        check(
            f.logging.is_some_and(|l| {
                self.logging.contains(&l) && ctx.config.logging_still_allowed(self.peer.as_str(), l)
            }),
            LOGGING,
        );
        // ESN-25, ESN-53: a disclosure we offered (only `never` by default).
        let disclosure = f
            .disclosure
            .filter(|d| ctx.config.offered_disclosure().contains(d));
        check(disclosure.is_some(), DISCLOSURE);
        check(f.security == Some(Security::E2e), SECURITY);
        check(
            f.group
                .is_some_and(|g| self.key_pairs.iter().any(|p| p.group() == g)),
            MODP,
        );
        check(
            f.cipher.is_some_and(|c| self.ciphers.contains(&c)),
            CRYPT_ALGS,
        );
        check(f.hash.is_some_and(|h| self.hashes.contains(&h)), HASH_ALGS);
        check(
            f.compression.is_some_and(|c| self.compression.contains(&c)),
            COMPRESS,
        );
        check(f.stanzas.is_some(), STANZAS);
        check(
            f.init_pubkey.is_some_and(|m| self.init_offer.contains(&m)),
            INIT_PUBKEY,
        );
        check(
            f.resp_pubkey.is_some_and(|m| self.resp_offer.contains(&m)),
            RESP_PUBKEY,
        );
        // The agreed algorithm: one we offered, and one we sign with if we must.
        let own_proof_ok = f
            .init_pubkey
            .is_some_and(|m| own_proof(ctx.config, m, f.sign_alg).is_some());
        check(
            !f.signs
                || (f.sign_alg.is_some_and(|a| self.sign_algs.contains(&a))
                    // Offline we never prove ourselves here: our options' signature did.
                    && (own_proof_ok || f.init_pubkey.is_none() || self.offline())),
            SIGN_ALGS,
        );
        check(f.ver.as_deref() == Some(self.profile.version), VER);
        check(
            f.rekey_freq.is_some_and(|r| r >= self.rekey_freq),
            REKEY_FREQ,
        );
        check(f.sas.is_some(), SAS_ALGS);
        check(
            f.n_b
                .as_ref()
                .is_some_and(|n| n.len() >= ctx.config.min_peer_nonce_len),
            MY_NONCE,
        );
        check(
            f.echoed_nonce
                .as_ref()
                .is_some_and(|n| ct_eq(n, &self.nonce)),
            NONCE,
        );
        check(f.counter.is_some(), COUNTER);
        let d = match (f.group, f.d_bytes.as_ref()) {
            // ESN-26: 1 < d < p-1, else not-acceptable.
            (Some(g), Some(bytes)) => DhPublicValue::from_bytes(g, bytes).ok(),
            _ => None,
        };
        check(d.is_some(), DHKEYS);
        f.bad = bad;
        (disclosure, d)
    }

    /// Message 2, read and checked against our offer (ESN-25, ESN-26):
    /// every choice must be one we offered; a bad one is named in the
    /// `not-acceptable` refusal, in the order the fields are read.
    fn read_answer(&self, ctx: &Context<'_>, form: &DataForm) -> Result<Answer, StepError> {
        let response = if self.offline() {
            AnswerMessage::from_offline_init(form).map(|a| Response::Accepted(Box::new(a)))
        } else {
            Response::try_from(form)
        };
        let answer = match response {
            Ok(Response::Accepted(answer)) => answer,
            Ok(Response::Declined) => return Err(StepError::Declined),
            Err(Unreadable(field)) => {
                return Err(Refusal::new(ErrorCondition::NotAcceptable, &[field]).into());
            }
        };
        let mut fields = AnswerFields::parse(self, *answer);
        let (disclosure, d) = self.check_answer(ctx, &mut fields);
        let three_message = self.three_message();
        let AnswerFields {
            bad,
            logging,
            group,
            cipher,
            hash,
            compression,
            init_pubkey,
            resp_pubkey,
            rekey_freq,
            n_b,
            counter,
            bob_identity,
            sign_alg,
            stanzas,
            ..
        } = fields;
        let (
            Some(logging),
            Some(disclosure),
            Some(group),
            Some(cipher),
            Some(hash),
            Some(compression),
            Some(init_pubkey),
            Some(resp_pubkey),
            Some(n_b),
            Some(c_a),
            Some(d),
            Some(stanzas),
            true,
        ) = (
            logging,
            disclosure,
            group,
            cipher,
            hash,
            compression,
            init_pubkey,
            resp_pubkey,
            n_b,
            counter,
            d,
            stanzas,
            bad.is_empty(),
        )
        else {
            return Err(Refusal::new(ErrorCondition::NotAcceptable, &bad).into());
        };
        Ok(Answer {
            agreed: Agreed {
                group,
                // Issue 6: the cipher that really runs for the advertised one.
                cipher: self.profile.effective_cipher(cipher),
                hash,
                compression,
                logging,
                disclosure,
                three_message,
                init_pubkey,
                resp_pubkey,
                sign_alg,
                stanzas,
                offline: self.offline(),
            },
            n_b,
            c_a,
            d,
            // Checked above: Bob's rekey_freq is at least ours (ENC-14).
            rekey_freq: rekey_freq.unwrap_or(u32::MAX),
            bob_identity,
        })
    }

    /// Message 2 -> message 3 (ESN-25..30; with 3 messages also ESN-27 and the
    /// end of the negotiation). `from` is the full JID that answered (SSN-11).
    pub(crate) fn on_response(
        self,
        ctx: &mut Context<'_>,
        from: &Jid,
        x: &Element,
        form: &DataForm,
    ) -> Result<ResponseOutcome, StepError> {
        let answer = self.read_answer(ctx, form)?;
        let (keyed, flow) = self.agree(answer, x)?;
        match flow {
            OfferFlow::Three { first_message } => keyed.complete_three(ctx, from, first_message),
            OfferFlow::Four => keyed.complete_four(ctx, from),
            OfferFlow::Offline => keyed.receive_offline(ctx, from),
        }
    }

    /// ESN-26: K from the chosen group's x, the provisional keys, and form_B.
    fn agree(self, answer: Answer, x: &Element) -> Result<(Keyed, OfferFlow), StepError> {
        let agreed = &answer.agreed;
        let (profile, hash) = (self.profile, agreed.hash);
        let Some(x_pair) = self
            .key_pairs
            .into_iter()
            .find(|p| p.group() == agreed.group)
        else {
            return Err(Refusal::new(ErrorCondition::NotAcceptable, &[MODP]).into());
        };
        let e = x_pair.public().to_mpi().to_vec();
        let raw = x_pair
            .agree_keeping(&answer.d)
            .map_err(|_| Refusal::new(ErrorCondition::NotAcceptable, &[DHKEYS]))?;
        let k = negotiation_secret(hash, &raw);
        drop(raw);
        let provisional =
            SessionKeys::derive(hash, agreed.cipher, &k).map_err(|_| Refusal::crypto())?;
        // ESN-18: form_B without Bob's identity/mac (only 3-message answers carry them).
        let excluded: &[&str] = if agreed.three_message {
            &[IDENTITY, MAC]
        } else {
            &[]
        };
        let form_b = profile
            .normalize(x, excluded)
            .map_err(|_| Refusal::new(ErrorCondition::NotAcceptable, &[]))?;
        let d_mpi = answer.d.to_mpi().to_vec();
        let keyed = Keyed {
            profile,
            thread: self.thread,
            n_a: self.nonce,
            form_a: self.form_a,
            x_pair,
            e,
            k,
            provisional,
            form_b,
            d_mpi,
            answer,
        };
        Ok((keyed, self.flow))
    }
}

/// Alice once message 2 is read and K agreed: what both flows' completions need.
struct Keyed {
    profile: Profile,
    thread: String,
    n_a: Vec<u8>,
    form_a: Vec<u8>,
    x_pair: DhKeyPair,
    /// MPI(e).
    e: Vec<u8>,
    k: SecretBytes,
    provisional: SessionKeys,
    form_b: Vec<u8>,
    /// MPI(d).
    d_mpi: Vec<u8>,
    answer: Answer,
}

impl Keyed {
    /// 4 messages: the completion with e and the rshashes (ESN-29/30), then
    /// wait for Bob's final message.
    fn complete_four(
        self,
        ctx: &mut Context<'_>,
        from: &Jid,
    ) -> Result<ResponseOutcome, StepError> {
        let hash = self.answer.agreed.hash;
        // Issue 10: the secrets we claim now are the chain the responder must continue.
        let (rshashes, claimed_chain) = rshashes(ctx, from, hash, &self.n_a);
        let fields = vec![
            Field::hidden(DHKEYS, vec![b64(&self.e)]),
            Field::hidden(RSHASHES, rshashes),
        ];
        let (stanza, m_a, c_a_after) = self.completion(ctx, from, fields)?;
        let sas = self.profile.sas(hash, &m_a, &self.form_b);
        let Self {
            profile,
            thread,
            n_a,
            x_pair,
            k,
            form_b,
            d_mpi,
            answer,
            ..
        } = self;
        Ok(ResponseOutcome::Completed(
            Box::new(AwaitingFinal {
                profile,
                peer: from.clone(),
                thread,
                agreed: answer.agreed,
                n_a,
                n_b: answer.n_b,
                d: d_mpi,
                k,
                c_a: c_a_after,
                c_b: answer.c_a.flip_top_bit(),
                form_b,
                sas,
                x_pair,
                d_value: answer.d,
                rekey_freq: answer.rekey_freq,
                claimed_chain,
            }),
            stanza,
        ))
    }

    /// 3 messages (ESN-27, ESN-29): verify Bob's identity before anything
    /// else is sent, then the completion (maybe with content) establishes.
    /// ESN-27 (3 messages): Bob's identity in his answer, verified; returns
    /// the proof, his key as judged, and C_B after his identity.
    fn verify_bob(
        &self,
        ctx: &mut Context<'_>,
        from: &Jid,
    ) -> Result<(IdentityProof, Option<PeerKeyInfo>, Counter), StepError> {
        let agreed = &self.answer.agreed;
        let (cipher, hash) = (agreed.cipher, agreed.hash);
        let mut c_b_after = self.answer.c_a.flip_top_bit();
        let (Some(identity), Some(m_b)) = &self.answer.bob_identity else {
            return Err(Refusal::crypto().into());
        };
        let responder = IdentityKeys::of(self.profile, cipher, hash, &self.provisional.responder);
        let peer_identity = open_identity(
            ctx,
            &responder,
            &mut c_b_after,
            &Transcript {
                head: &[&self.n_a, &self.answer.n_b, &self.d_mpi],
                tail: &[&self.form_b],
            },
            (agreed.resp_pubkey, agreed.sign_alg),
            identity,
            m_b,
        )?;
        let bob_key = judge_peer_key(ctx, from, peer_identity.key)?;
        Ok((peer_identity.proof, bob_key, c_b_after))
    }

    /// The session both 3-message endings build once Bob verified: our x
    /// and his d kept for rekeying, C_A and C_B as given (after the identities).
    fn establish(
        self,
        ctx: &Context<'_>,
        from: &Jid,
        proof: IdentityProof,
        info: SessionInfo,
        (c_a, c_b): (Counter, Counter),
    ) -> Result<EstablishedSession, Refusal> {
        let Self {
            profile,
            thread,
            x_pair,
            provisional,
            answer,
            ..
        } = self;
        establish(
            ctx,
            proof,
            Agreement {
                profile,
                id: SessionId {
                    peer: from.clone(),
                    thread,
                },
                info,
                cipher: answer.agreed.cipher,
                hash: answer.agreed.hash,
                keys: &provisional,
                c_a,
                c_b,
                rekey_freq: answer.rekey_freq,
                own_pair: x_pair,
                peer_value: answer.d,
                unconfirmed_secret: None,
                pending_retained_claim: None,
            },
        )
    }

    /// XEP-0187 (OFF-14/15/16): Bob's offline `<init/>` answered our
    /// published options. His identity verified, the session is established
    /// for reading only: we send nothing, not even message 3.
    fn receive_offline(
        self,
        ctx: &mut Context<'_>,
        from: &Jid,
    ) -> Result<ResponseOutcome, StepError> {
        let (proof, bob_key, c_b_after) = self.verify_bob(ctx, from)?;
        let info = session_info(ctx, &self.answer.agreed, String::new(), bob_key, true);
        // We never send in this session (OFF-16): C_A is unused.
        let c_a = self.answer.c_a;
        let session = self.establish(ctx, from, proof, info.clone(), (c_a, c_b_after))?;
        Ok(ResponseOutcome::ReceivedOffline {
            session: Box::new(session),
            info,
        })
    }

    /// 3 messages (ESN-27, ESN-29): verify Bob's identity before anything
    /// else is sent, then the completion (maybe with content) establishes.
    fn complete_three(
        self,
        ctx: &mut Context<'_>,
        from: &Jid,
        first_message: Option<(Element, bool)>,
    ) -> Result<ResponseOutcome, StepError> {
        let (proof, bob_key, c_b_after) = self.verify_bob(ctx, from)?;
        let terminate = first_message
            .as_ref()
            .is_some_and(|(_, terminate)| *terminate);
        let fields = if terminate {
            vec![Field::untyped("terminate", vec!["1".to_owned()])]
        } else {
            Vec::new()
        };
        let (mut stanza, _, c_a_after) = self.completion(ctx, from, fields)?;
        let info = session_info(ctx, &self.answer.agreed, String::new(), bob_key, true);
        let mut session = self.establish(ctx, from, proof, info.clone(), (c_a_after, c_b_after))?;
        // ESN-29, AMB-44: content after the identity, under the same C_A,
        // counted under the session's first keys like any stanza (ENC-19).
        let mut terminated = false;
        if let Some((plain, terminate)) = first_message {
            let sealed = session
                .seal_bundled(&plain, ctx.rng, ctx.clock.now_unix())
                .map_err(|_| Refusal::crypto())?;
            for child in sealed.children() {
                if child.is("c", ns::STANZA_ENCRYPTION) || child.is("amp", ns::AMP) {
                    stanza.append_child(child.clone());
                }
            }
            terminated = terminate;
        }
        Ok(ResponseOutcome::Established {
            session: Box::new(session),
            stanza,
            info,
            terminated,
        })
    }

    /// Message 3: FORM_TYPE, accept, nonce, the flow's `fields`, then ID_A
    /// and M_A (ESN-28: mac_A = HMAC(KS_A, N_B | N_A | e | pubKey_A | form_A
    /// | form_A2)). Returns the stanza, M_A and C_A after the identity.
    fn completion(
        &self,
        ctx: &mut Context<'_>,
        from: &Jid,
        fields: Vec<Field>,
    ) -> Result<(Element, Vec<u8>, Counter), StepError> {
        let agreed = &self.answer.agreed;
        let mut completion = DataForm::new(FormKind::Result)
            .with_field(Field::untyped(FORM_TYPE, vec![ns::SSN.to_owned()]))
            .with_field(Field::untyped(ACCEPT, vec!["1".to_owned()]))
            .with_field(Field::untyped(NONCE, vec![b64(&self.answer.n_b)]));
        for field in fields {
            completion = completion.with_field(field);
        }
        let form_a2 = self
            .profile
            .normalize(&Element::from(&completion), &[])
            .map_err(|_| Refusal::crypto())?;
        let mut c_a_after = self.answer.c_a;
        let keys = IdentityKeys::of(
            self.profile,
            agreed.cipher,
            agreed.hash,
            &self.provisional.initiator,
        );
        let proof = own_proof(ctx.config, agreed.init_pubkey, agreed.sign_alg)
            .ok_or_else(Refusal::crypto)?;
        let sealed = identity::seal(
            &keys,
            &mut c_a_after,
            &Transcript {
                head: &[&self.answer.n_b, &self.n_a, &self.e],
                tail: &[&self.form_a, &form_a2],
            },
            proof,
        )
        .map_err(Refusal::from)?;
        completion = completion
            .with_field(Field::untyped(IDENTITY, vec![b64(&sealed.identity)]))
            .with_field(Field::untyped(MAC, vec![b64(&sealed.m)]));
        let mut stanza = message(from.as_str(), ctx.config.own_jid.as_deref(), None);
        stanza.append_child(text_child("thread", ns::JABBER_CLIENT, &self.thread));
        let mut feature = Element::bare("feature", ns::FEATURE_NEG);
        feature.append_child(Element::from(&completion));
        stanza.append_child(feature);
        Ok((stanza, sealed.m, c_a_after))
    }
}

/// ESN-30: the rshashes of every unexpired secret retained with `peer`'s
/// clients plus random decoys, shuffled.
/// Also returns the chain those secrets continue (`None`: we hold none).
fn rshashes(
    ctx: &mut Context<'_>,
    peer: &Jid,
    hash: HashAlgorithm,
    n_a: &[u8],
) -> (Vec<String>, Option<BrokenChain>) {
    let retained = ctx.trust.retained_secrets(peer.to_bare().as_str());
    let retained: Vec<_> = ctx
        .read(retained)
        .into_iter()
        .filter(|rs| unexpired(ctx.config, ctx.clock, rs.created))
        .collect();
    let chain = super::secrets::broken_chain(&retained);
    let mut rshashes: Vec<String> = retained
        .iter()
        .map(|rs| b64(&retained_secret_hash(hash, n_a, &rs.secret)))
        .collect();
    for _ in 0..ctx.config.rshash_decoys.max(2) {
        let mut decoy = vec![0u8; hash.output_len()];
        ctx.rng.fill(RandomPurpose::RetainedSecretDecoy, &mut decoy);
        rshashes.push(b64(&decoy));
    }
    let order = ctx.rng.permutation(rshashes.len());
    let shuffled: Vec<String> = order
        .iter()
        .filter_map(|&i| rshashes.get(i).cloned())
        .collect();
    if shuffled.len() == rshashes.len() {
        (shuffled, chain)
    } else {
        (rshashes, chain)
    }
}

impl AwaitingFinal {
    /// Message 4 (ESN-39..41): retained secret, K_final, Bob's identity.
    pub(crate) fn on_final(
        self,
        ctx: &mut Context<'_>,
        x: &Element,
        form: &DataForm,
    ) -> Result<(EstablishedSession, SessionInfo), Refusal> {
        // AMB-52: any problem in message 4 is feature-not-implemented.
        let Final {
            nonce,
            srshash,
            identity,
            mac: m_b,
        } = Final::try_from(form).map_err(|_| Refusal::crypto())?;
        let hash = self.agreed.hash;
        if !ct_eq(&nonce, &self.n_a) {
            return Err(Refusal::crypto());
        }
        // ESN-41: SRS = the stored secret whose HMAC matches srshash.
        let peer_bare = self.peer.to_bare().as_str().to_owned();
        let stored = ctx.trust.retained_secrets(&peer_bare);
        let matched = ctx
            .read(stored)
            .into_iter()
            .filter(|rs| unexpired(ctx.config, ctx.clock, rs.created))
            .find(|rs| ct_eq(&shared_retained_secret_hash(hash, &rs.secret), &srshash))
            .map(|rs| RetainedMatch {
                secret: rs.secret,
                verified: rs.verified,
            });
        // Issue 10: we claimed secrets for this contact and it proved none.
        let broken = if matched.is_some() {
            None
        } else {
            self.claimed_chain.clone()
        };
        let other = super::secrets::other_shared_secret(ctx, &peer_bare);
        let k_final = final_shared_secret(
            hash,
            &self.k,
            matched.as_ref().map(|m| &m.secret),
            other.as_ref(),
        );
        let keys = SessionKeys::derive(hash, self.agreed.cipher, &k_final)
            .map_err(|_| Refusal::crypto())?;

        // ESN-27 with form_B2 (ESN-38): verify M_B, then mac_B.
        let form_b2 = self
            .profile
            .normalize(x, &[IDENTITY, MAC])
            .map_err(|_| Refusal::crypto())?;
        let mut c_b = self.c_b;
        let responder = IdentityKeys::of(self.profile, self.agreed.cipher, hash, &keys.responder);
        let peer_identity = open_identity(
            ctx,
            &responder,
            &mut c_b,
            &Transcript {
                head: &[&self.n_a, &self.n_b, &self.d],
                tail: &[&self.form_b, &form_b2],
            },
            (self.agreed.resp_pubkey, self.agreed.sign_alg),
            &identity,
            &m_b,
        )?;
        let peer_key = judge_peer_key(ctx, &self.peer, peer_identity.key)?;

        // ESN-40: replace the retained secret; carry the verified flag forward (ESN-42).
        let verified = matched.as_ref().is_some_and(|m| m.verified);
        let client = ctx.store_new_retained_secret(&self.peer, hash, &k_final, verified);
        // Message 4 itself proved Bob holds the final keys (AMB-57).
        let confirmed = ctx.trust.confirm_retained_secret(&peer_bare, &client);
        ctx.write(confirmed);

        let mut info = session_info(ctx, &self.agreed, self.sas.clone(), peer_key, true);
        info.authenticated_by_retained_secret = matched.is_some();
        info.retained_chain_verified = verified;
        info.other_secret_used = other.is_some();
        info.sas_reminder = info.sas_reminder && !verified;
        if let Some(broken) = broken {
            ctx.alerts
                .push(SecurityAlert::RetainedSecretNotProven(broken.clone()));
            info.broken_chain = Some(broken);
        }
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
                cipher: self.agreed.cipher,
                hash,
                keys: &keys,
                c_a: self.c_a,
                c_b,
                rekey_freq: self.rekey_freq,
                own_pair: self.x_pair,
                peer_value: self.d_value,
                unconfirmed_secret: None,
                pending_retained_claim: None,
            },
        )?;
        Ok((session, info))
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

    use esession_wire::form::DataForm;

    use super::*;
    use crate::negotiation::responder::{OfferOutcome, evaluate};
    use crate::negotiation::testing::{ALICE, BOB, Env, form_of, jid, small};

    /// Alice's state after her offer, and Bob's genuine answer (message 2).
    fn offer_and_answer(alice: &mut Env) -> (AwaitingResponse, Element) {
        let mut bob = Env::new(BOB, small(), 2);
        let (state, _, answer) = through_answer(alice, &mut bob);
        (state, answer)
    }

    /// `answer` with the value of `var` replaced by `value`.
    fn with_value(answer: &Element, var: &str, value: &str) -> DataForm {
        let mut form = DataForm::try_from(answer).unwrap();
        for field in &mut form.fields {
            if field.var.as_deref() == Some(var) {
                field.values = vec![value.to_owned()];
            }
        }
        form
    }

    fn refused_fields(result: Result<Answer, StepError>, what: &str) -> Vec<String> {
        match result {
            Err(StepError::Refuse(r)) => {
                assert_eq!(r.condition, ErrorCondition::NotAcceptable);
                r.fields
            }
            Err(StepError::Declined) => panic!("{what}: declined"),
            Ok(_) => panic!("{what}: accepted"),
        }
    }

    #[test]
    fn a_genuine_answer_is_read_into_what_bob_chose() {
        let mut alice = Env::new(ALICE, small(), 1);
        let (state, answer) = offer_and_answer(&mut alice);
        let form = DataForm::try_from(&answer).unwrap();
        let read = state.read_answer(&alice.ctx(), &form);
        let Ok(read) = read else {
            panic!("refused");
        };
        assert_eq!(read.agreed.group, ModpGroup::Group1);
        assert!(!read.agreed.three_message);
    }

    #[test]
    fn a_choice_we_did_not_offer_is_refused_by_name() {
        // ESN-25: every choice must come from the offer (Alice offers one
        // hash and one cipher).
        let sha256_only = Config {
            hashes: vec![HashAlgorithm::Sha256],
            ciphers: vec![CipherAlgorithm::Aes128Ctr],
            ..small()
        };
        let mut alice = Env::new(ALICE, sha256_only, 1);
        let (state, answer) = offer_and_answer(&mut alice);
        let ctx = alice.ctx();
        for (var, value) in [
            (CRYPT_ALGS, "twofish256-ctr"),
            (MODP, "18"),
            (HASH_ALGS, "whirlpool"),
            (REKEY_FREQ, "0"),
        ] {
            let form = with_value(&answer, var, value);
            assert_eq!(refused_fields(state.read_answer(&ctx, &form), var), [var]);
        }
        // The nonce must echo ours (constant-time compare).
        let form = with_value(&answer, NONCE, "AAAAAAAAAAAAAAAAAAAAAA==");
        assert_eq!(
            refused_fields(state.read_answer(&ctx, &form), NONCE),
            [NONCE]
        );
    }

    #[test]
    fn a_declining_answer_is_not_a_refusal() {
        // SSN-07: accept=0 declines; nothing is sent back.
        let mut alice = Env::new(ALICE, small(), 1);
        let (state, answer) = offer_and_answer(&mut alice);
        let form = with_value(&answer, ACCEPT, "0");
        assert!(matches!(
            state.read_answer(&alice.ctx(), &form),
            Err(StepError::Declined)
        ));
    }

    /// Bob's state after his answer too, for the later steps.
    fn through_answer(
        alice: &mut Env,
        bob: &mut Env,
    ) -> (
        AwaitingResponse,
        crate::negotiation::responder::AwaitingAccept,
        Element,
    ) {
        let (state, offer) = offer(&mut alice.ctx(), &jid(BOB), "t".into()).unwrap();
        let x = form_of(&offer);
        let form = DataForm::try_from(&x).unwrap();
        let Ok(OfferOutcome::Esession(evaluated)) =
            evaluate(&mut bob.ctx(), &jid(ALICE), "t", &x, form.clone())
        else {
            panic!("Bob refused the offer");
        };
        let (bob_state, answer) = evaluated.answer(&mut bob.ctx()).unwrap();
        (state, bob_state, form_of(&answer))
    }

    #[test]
    fn each_step_of_the_four_message_flow_advances_both_sides() {
        // ESN-25..41, step by step without the manager: offer, answer,
        // completion, final; both sides end with the same SAS and keys.
        let (mut alice, mut bob) = (Env::new(ALICE, small(), 1), Env::new(BOB, small(), 2));
        let (state, bob_state, answer) = through_answer(&mut alice, &mut bob);
        let form = DataForm::try_from(&answer).unwrap();
        let Ok(ResponseOutcome::Completed(awaiting_final, completion)) =
            state.on_response(&mut alice.ctx(), &jid(BOB), &answer, &form)
        else {
            panic!("no completion");
        };
        let x3 = form_of(&completion);
        let form3 = DataForm::try_from(&x3).unwrap();
        let Ok(accepted) = bob_state.on_accept(&mut bob.ctx(), &x3, &form3) else {
            panic!("Bob refused the completion");
        };
        let final_message = accepted.reply.expect("message 4");
        let x4 = form_of(&final_message);
        let form4 = DataForm::try_from(&x4).unwrap();
        let Ok((session, info)) = awaiting_final.on_final(&mut alice.ctx(), &x4, &form4) else {
            panic!("Alice refused the final message");
        };
        assert_eq!(info.sas, accepted.info.sas, "both sides show one SAS");
        assert!(!info.sas.is_empty());
        assert!(info.we_initiated && !accepted.info.we_initiated);
        assert_eq!(session.id().thread, "t");
    }

    #[test]
    fn a_completion_that_fails_verification_is_refused_without_detail() {
        // AMB-52: feature-not-implemented, no field named.
        let (mut alice, mut bob) = (Env::new(ALICE, small(), 1), Env::new(BOB, small(), 2));
        let (state, bob_state, answer) = through_answer(&mut alice, &mut bob);
        let form = DataForm::try_from(&answer).unwrap();
        let Ok(ResponseOutcome::Completed(_, completion)) =
            state.on_response(&mut alice.ctx(), &jid(BOB), &answer, &form)
        else {
            panic!("no completion");
        };
        let x3 = form_of(&completion);
        // Alice's MAC (M_A) altered: Bob refuses.
        let mut form3 = DataForm::try_from(&x3).unwrap();
        for field in &mut form3.fields {
            if field.var.as_deref() == Some(MAC) {
                field.values = vec![b64(&[0u8; 32])];
            }
        }
        match bob_state.on_accept(&mut bob.ctx(), &x3, &form3) {
            Err(StepError::Refuse(r)) => {
                assert_eq!(r.condition, ErrorCondition::FeatureNotImplemented);
                assert!(r.fields.is_empty());
            }
            Err(StepError::Declined) => panic!("declined"),
            Ok(_) => panic!("a forged completion was accepted"),
        }
    }
}
