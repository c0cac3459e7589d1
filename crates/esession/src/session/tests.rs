#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]
//! Unit tests of rekeying on two directly built sessions whose keys and
//! exponents the test knows: the e-range check (ENC-18, AMB-27) with
//! authentic stanzas, key-set selection (ENC-11) and the ENC-15 labels.

use esession_crypto::kdf::{DirectionKeys, SessionKeys};
use esession_crypto::{
    CipherAlgorithm, CompressionAlgorithm, Counter, DhKeyPair, DhPublicValue, ExponentSize,
    HashAlgorithm, MacKey, ModpGroup, SecretBytes,
};
use esession_crypto::{GroupPrime, Hashing};
use esession_wire::encrypted::EncryptedContent;
use esession_wire::minidom::Element;
use esession_wire::ns;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;

use super::*;
use crate::config::PubkeyMethod;
use crate::event::{SessionId, SessionInfo};
use crate::random::SystemRandomness;
use crate::ssn::{Disclosure, Logging};
use crate::stanza::StanzaKind;

const GROUP: ModpGroup = ModpGroup::Group1;
const HASH: HashAlgorithm = HashAlgorithm::Sha256;
const CIPHER: CipherAlgorithm = CipherAlgorithm::Aes128Ctr;
const T0: u64 = 1_700_000_000;
const X: [u8; 40] = [0x9a; 40];
const Y: [u8; 40] = [0xc3; 40];

fn info(we_initiated: bool) -> SessionInfo {
    SessionInfo {
        offline: false,
        sas: String::new(),
        authenticated_by_retained_secret: false,
        retained_chain_verified: false,
        other_secret_used: false,
        sas_reminder: true,
        logging: Logging::May,
        disclosure: Disclosure::Never,
        group: GROUP,
        cipher: CIPHER,
        hash: HASH,
        compression: CompressionAlgorithm::None,
        stanzas: StanzaKind::ALL.to_vec(),
        we_initiated,
        three_message: false,
        peer_identification: PubkeyMethod::None,
        own_identification: PubkeyMethod::None,
        peer_key: None,
        key_alerts: Vec::new(),
        sas_confirmed: false,
        broken_chain: None,
        retained_secret_unproven: false,
    }
}

fn pair_of(exponent: &[u8]) -> DhKeyPair {
    DhKeyPair::from_private_exponent(GROUP, exponent).unwrap()
}

struct Fixture {
    alice: EstablishedSession,
    bob: EstablishedSession,
    rng: SystemRandomness<ChaCha20Rng>,
    /// Alice's negotiated KM and first counter.
    km_a: SecretBytes,
    c_a: Counter,
}

fn fixture() -> Fixture {
    let keys =
        SessionKeys::derive(HASH, CIPHER, &SecretBytes::from_slice(b"negotiated K")).unwrap();
    let c_a = Counter::new(5);
    let c_b = c_a.flip_top_bit();
    let direction =
        |k: &DirectionKeys, c| Direction::new(CIPHER, HASH, &k.cipher, &k.mac, c).unwrap();
    let session = |we_initiated: bool, own: &[u8], peer: &[u8]| {
        let (send, receive, c_send, c_receive, peer_jid) = if we_initiated {
            (
                &keys.initiator,
                &keys.responder,
                c_a,
                c_b,
                "bob@example.com/laptop",
            )
        } else {
            (
                &keys.responder,
                &keys.initiator,
                c_b,
                c_a,
                "alice@example.org/pda",
            )
        };
        EstablishedSession::new(
            SessionSetup {
                profile: crate::profile::Profile::standard(),
                id: SessionId {
                    peer: jid::Jid::new(peer_jid).unwrap(),
                    thread: "thread".to_owned(),
                },
                info: info(we_initiated),
                own_jid: None,
                send: direction(send, c_send),
                receive: direction(receive, c_receive),
                rekey: RekeySetup {
                    group: GROUP,
                    exponent_size: ExponentSize::Recommended,
                    rekey_freq: 1,
                    own: pair_of(own),
                    peer: pair_of(peer).public().clone(),
                    idle_rekey_after: None,
                    block_limit: 1 << 32,
                    now: T0,
                    rekeying: true,
                    peer_rekeys_per_minute: 60,
                },
                pad_to_multiple: None,
                max_plaintext_len: 1 << 16,
                max_elements: 4096,
                unconfirmed_secret: None,
                pending_retained_claim: None,
            },
            crate::identity::IdentityProof::assumed_in_tests(),
        )
    };
    Fixture {
        alice: session(true, &X, &Y),
        bob: session(false, &Y, &X),
        rng: SystemRandomness::new(ChaCha20Rng::seed_from_u64(200)),
        km_a: SecretBytes::from_slice(keys.initiator.mac.expose()),
        c_a,
    }
}

/// A rekey-only `<c/>` from Alice with `key` as `<key/>`, MACed under her
/// negotiated KM at her first counter: authentic as far as Bob can tell.
fn authentic_key_stanza(f: &Fixture, key: Vec<u8>) -> Element {
    let content = EncryptedContent {
        data: None,
        key: Some(key),
        new: None,
        old: Vec::new(),
        mac: Vec::new(),
    };
    let mac = MacKey::new(HASH, f.km_a.expose());
    let c = content.seal_with(|m| mac.compute(&[m, &f.c_a.to_bytes()]));
    let mut stanza = Element::bare("message", ns::JABBER_CLIENT);
    stanza.append_child(c);
    stanza
}

fn text(body: &str) -> Element {
    let mut m = Element::bare("message", ns::JABBER_CLIENT);
    let mut b = Element::bare("body", ns::JABBER_CLIENT);
    b.append_text_node(body);
    m.append_child(b);
    m
}

fn body_of(opened: Opened) -> String {
    match opened {
        Opened::Message(m, _) => m.get_child("body", ns::JABBER_CLIENT).unwrap().text(),
        other => panic!("not a message: {other:?}"),
    }
}

#[test]
fn an_authentic_key_outside_1_and_p_minus_1_ends_the_session_and_changes_nothing() {
    // ENC-18 test: e=1 -> terminate; AMB-27: also p-1 (and 0, p).
    let mut p = GROUP.prime_bytes();
    let mut p_minus_1 = p.clone();
    *p_minus_1.last_mut().unwrap() -= 1; // p is odd: no borrow
    let cases: [(&str, Vec<u8>); 5] = [
        ("0", vec![0]),
        ("1", vec![1]),
        ("0001", vec![0, 1]),
        ("p-1", p_minus_1),
        ("p", core::mem::take(&mut p)),
    ];
    for (name, key) in cases {
        let mut f = fixture();
        let before_mac = f.bob.key_ring().receive_mac_of(0);
        let before_send = f.bob.key_ring().send_mac();
        let forged = authentic_key_stanza(&f, key);
        assert_eq!(
            f.bob.open(&forged, T0).err(),
            Some(OpenFailure::Invalid),
            "e = {name}"
        );
        // Nothing half-updated: counter, key sets, peer value, outgoing keys.
        assert_eq!(f.bob.receive_counter, f.c_a, "{name}");
        assert_eq!(f.bob.key_ring().receive_mac_of(0), before_mac, "{name}");
        assert_eq!(f.bob.key_ring().send_mac(), before_send, "{name}");
        assert_eq!(f.bob.key_ring().live_set_numbers(), [0], "{name}");
        assert_eq!(
            f.bob.key_ring().peer_public_mpi(),
            pair_of(&X).public().to_mpi(),
            "{name}"
        );
        // Alice's genuine stanza at the same counter still opens.
        let genuine = f.alice.seal_message(&text("fine"), &mut f.rng, T0).unwrap();
        assert_eq!(body_of(f.bob.open(&genuine[0], T0).unwrap()), "fine");
    }
    // Control: the same construction with an in-range e is accepted, so the
    // refusals above come from the range check alone.
    let mut f = fixture();
    let good = pair_of(&[0x77; 40]).public().to_mpi().to_vec();
    let forged = authentic_key_stanza(&f, good);
    assert!(matches!(f.bob.open(&forged, T0), Ok(Opened::Nothing)));
    assert_ne!(
        f.bob.key_ring().receive_mac_of(0),
        Some(f.km_a.expose().to_vec())
    );
}

fn key_from(stanza: &Element) -> DhPublicValue {
    let key = stanza
        .get_child("c", ns::STANZA_ENCRYPTION)
        .and_then(|c| c.get_child("key", ns::STANZA_ENCRYPTION))
        .unwrap()
        .text();
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(key)
        .unwrap();
    DhPublicValue::from_bytes(GROUP, &bytes).unwrap()
}

#[test]
fn rekey_keys_use_the_labels_of_who_sent_key() {
    // ENC-15: K = d^x; the <key/> sender's keys are "Rekey Initiator ...",
    // the acceptor's "Rekey Acceptor ...", whatever the session roles. K is
    // recomputed here from the other side's exponent and the labels applied
    // with plain HMAC.
    for alice_rekeys in [true, false] {
        let mut f = fixture();
        let (sender, acceptor, acceptor_exponent) = if alice_rekeys {
            (&mut f.alice, &mut f.bob, Y)
        } else {
            (&mut f.bob, &mut f.alice, X)
        };
        let stanza = sender.seal_rekey(&mut f.rng, T0).unwrap();
        let e = key_from(&stanza);
        let k = pair_of(&acceptor_exponent).agree_keeping(&e).unwrap();
        let label = |l: &[u8]| HASH.hmac(k.expose(), &[l]);
        assert_eq!(sender.key_ring().send_mac(), label(b"Rekey Initiator MAC"));
        assert_eq!(
            sender.key_ring().receive_mac_of(1),
            Some(label(b"Rekey Acceptor MAC"))
        );
        assert!(matches!(acceptor.open(&stanza, T0), Ok(Opened::Nothing)));
        assert_eq!(acceptor.key_ring().send_mac(), label(b"Rekey Acceptor MAC"));
        assert_eq!(
            acceptor.key_ring().receive_mac_of(0),
            Some(label(b"Rekey Initiator MAC"))
        );
        assert_eq!(acceptor.key_ring().peer_public_mpi(), e.to_mpi());
        // And the new keys carry content both ways.
        let reply = acceptor.seal_message(&text("ack"), &mut f.rng, T0).unwrap();
        assert_eq!(body_of(sender.open(&reply[0], T0).unwrap()), "ack");
        let back = sender.seal_message(&text("back"), &mut f.rng, T0).unwrap();
        assert_eq!(body_of(acceptor.open(&back[0], T0).unwrap()), "back");
    }
}

#[test]
fn new_1_after_two_own_rekeys_uses_set_1_and_wipes_set_0() {
    // ENC-11 test: two own rekeys, peer <new>1</new> -> set 1 used, set 0 wiped.
    let mut f = fixture();
    let k1 = f.alice.seal_rekey(&mut f.rng, T0).unwrap();
    let k2 = f.alice.seal_rekey(&mut f.rng, T0).unwrap();
    assert_eq!(f.alice.key_ring().live_set_numbers(), [0, 1, 2]);
    let set0 = f.alice.key_ring().receive_mac_of(0);
    assert!(set0.is_some());
    assert!(matches!(f.bob.open(&k1, T0), Ok(Opened::Nothing)));
    let reply = f.bob.seal_message(&text("new 1"), &mut f.rng, T0).unwrap();
    assert_eq!(body_of(f.alice.open(&reply[0], T0).unwrap()), "new 1");
    assert_eq!(f.alice.key_ring().live_set_numbers(), [1, 2], "set 0 wiped");
    assert_eq!(f.alice.key_ring().receive_mac_of(0), None);
    // Alice now publishes set 0's MAC key (ENC-20) in her next stanza.
    let next = f.alice.seal_message(&text("next"), &mut f.rng, T0).unwrap();
    let old: Vec<String> = next[0]
        .get_child("c", ns::STANZA_ENCRYPTION)
        .unwrap()
        .children()
        .filter(|c| c.is("old", ns::STANZA_ENCRYPTION))
        .map(Element::text)
        .collect();
    use base64::Engine as _;
    let set0_b64 = base64::engine::general_purpose::STANDARD.encode(set0.unwrap());
    assert!(old.contains(&set0_b64), "{old:?}");
    // Bob then gets k2 and the stanza; his <new>1</new> picks set 2.
    assert!(matches!(f.bob.open(&k2, T0), Ok(Opened::Nothing)));
    assert_eq!(body_of(f.bob.open(&next[0], T0).unwrap()), "next");
    let reply = f
        .bob
        .seal_message(&text("new 1 again"), &mut f.rng, T0)
        .unwrap();
    assert_eq!(body_of(f.alice.open(&reply[0], T0).unwrap()), "new 1 again");
    assert_eq!(f.alice.key_ring().live_set_numbers(), [2]);
}

#[test]
fn a_new_beyond_our_newest_set_is_unauthenticated() {
    let mut f = fixture();
    let content = EncryptedContent {
        data: None,
        key: None,
        new: core::num::NonZeroU32::new(3),
        old: Vec::new(),
        mac: vec![0; 32],
    };
    let mut stanza = Element::bare("message", ns::JABBER_CLIENT);
    stanza.append_child(Element::from(&content));
    assert_eq!(
        f.alice.open(&stanza, T0).err(),
        Some(OpenFailure::Unauthenticated)
    );
    let genuine = f
        .bob
        .seal_message(&text("still in step"), &mut f.rng, T0)
        .unwrap();
    assert_eq!(
        body_of(f.alice.open(&genuine[0], T0).unwrap()),
        "still in step"
    );
}

// ---------------------------------------------------------------------------
// Two <c/> in one stanza (ENC-03 with ENC-08/11/16, proposed AMB-63): one key
// set for both, <key/> only in the top-level one.

/// An empty `<c/>` with these parts, MACed with `km` at `counter`.
fn authentic_c(km: &[u8], counter: Counter, new: u32, key: Option<Vec<u8>>) -> Element {
    let content = EncryptedContent {
        data: None,
        key,
        new: core::num::NonZeroU32::new(new),
        old: Vec::new(),
        mac: Vec::new(),
    };
    let mac = MacKey::new(HASH, km);
    content.seal_with(|m| mac.compute(&[m, &counter.to_bytes()]))
}

/// An iq error from Alice with `top` at the top and `inner` inside `<error/>`.
fn iq_error_with(top: Element, inner: Element) -> Element {
    let mut iq = Element::bare("iq", ns::JABBER_CLIENT);
    crate::stanza::set_attr(&mut iq, "type", "error");
    crate::stanza::set_attr(&mut iq, "id", "e1");
    iq.append_child(top);
    let mut error = Element::bare("error", ns::JABBER_CLIENT);
    crate::stanza::set_attr(&mut error, "type", "cancel");
    error.append_child(Element::bare("item-not-found", ns::XMPP_STANZAS));
    error.append_child(inner);
    iq.append_child(error);
    iq
}

fn next(counter: Counter) -> Counter {
    let mut c = counter;
    c.advance(1);
    c
}

#[test]
fn a_key_inside_error_is_refused_whole_and_changes_nothing() {
    let mut f = fixture();
    let e = pair_of(&[0x77; 40]).public().to_mpi().to_vec();
    let km = f.km_a.duplicate();
    let stanza = iq_error_with(
        authentic_c(km.expose(), f.c_a, 0, None),
        authentic_c(km.expose(), next(f.c_a), 0, Some(e.clone())),
    );
    let before_send = f.bob.key_ring().send_mac();
    assert_eq!(
        f.bob.open_unthreaded(&stanza, T0).err(),
        Some(OpenFailure::Invalid),
        "both MACs verify, but <key/> belongs in the top-level <c/>"
    );
    assert_eq!(f.bob.receive_counter, f.c_a, "counter not committed");
    assert_eq!(f.bob.key_ring().send_mac(), before_send, "key not accepted");
    assert_eq!(
        f.bob.key_ring().peer_public_mpi(),
        pair_of(&X).public().to_mpi()
    );
    // Control: the same <key/> in the top-level <c/> is accepted, for the
    // whole stanza, once.
    let stanza = iq_error_with(
        authentic_c(km.expose(), f.c_a, 0, Some(e.clone())),
        authentic_c(km.expose(), next(f.c_a), 0, None),
    );
    let opened = f.bob.open_unthreaded(&stanza, T0).unwrap();
    assert_eq!(opened.attr("id"), Some("e1"));
    assert_eq!(f.bob.receive_counter, next(next(f.c_a)));
    assert_eq!(f.bob.key_ring().peer_public_mpi(), e);
    assert_ne!(f.bob.key_ring().send_mac(), before_send, "ENC-18: new keys");
}

#[test]
fn the_two_c_of_one_stanza_must_choose_the_same_key_set() {
    // Bob rekeys: he accepts set 0 (negotiated) and set 1 (his <key/>). Set
    // 1's incoming MAC key is recomputed here from Alice's exponent and the
    // ENC-15 label, independently of the key ring.
    let mut f = fixture();
    let kb = f.bob.seal_rekey(&mut f.rng, T0).unwrap();
    let k = pair_of(&X).agree_keeping(&key_from(&kb)).unwrap();
    let set1_km = HASH.hmac(k.expose(), &[b"Rekey Acceptor MAC"]);
    assert_eq!(f.bob.key_ring().live_set_numbers(), [0, 1]);
    let km0 = f.km_a.duplicate();
    for (name, top, inner) in [
        (
            "set 0 then set 1",
            authentic_c(km0.expose(), f.c_a, 0, None),
            authentic_c(&set1_km, next(f.c_a), 1, None),
        ),
        (
            "set 1 then set 0",
            authentic_c(&set1_km, f.c_a, 1, None),
            authentic_c(km0.expose(), next(f.c_a), 0, None),
        ),
    ] {
        assert_eq!(
            f.bob.open_unthreaded(&iq_error_with(top, inner), T0).err(),
            Some(OpenFailure::Invalid),
            "{name}"
        );
        assert_eq!(f.bob.receive_counter, f.c_a, "{name}: nothing committed");
        assert_eq!(f.bob.key_ring().live_set_numbers(), [0, 1], "{name}");
    }
    // Control: both under set 1, both saying <new>1</new>: accepted, and set
    // 0 is wiped (ENC-11).
    let stanza = iq_error_with(
        authentic_c(&set1_km, f.c_a, 1, None),
        authentic_c(&set1_km, next(f.c_a), 1, None),
    );
    assert!(f.bob.open_unthreaded(&stanza, T0).is_ok());
    assert_eq!(f.bob.key_ring().live_set_numbers(), [1]);
    assert_eq!(f.bob.receive_counter, next(next(f.c_a)));
}

#[test]
fn a_refused_key_says_why() {
    // Issue 12: each refusal of a peer's <key/> names its reason (all end the
    // session, ENC-13); here checked on the key ring directly.
    let mut f = fixture();
    let stanza = f.alice.seal_rekey(&mut f.rng, T0).unwrap();
    let e = key_from(&stanza).to_mpi().to_vec();
    let ring = f.bob.key_ring();
    // 1 < e < p-1 (AMB-27): 1 is out of range.
    assert_eq!(
        ring.accept_key(0, &[1], T0).err(),
        Some(rekey::KeyRefused::OutOfRange)
    );
    // A key set Bob never had.
    assert_eq!(
        ring.accept_key(7, &e, T0).err(),
        Some(rekey::KeyRefused::UnknownKeySet)
    );
    // The genuine key is accepted.
    assert!(ring.accept_key(0, &e, T0).is_ok());
}
