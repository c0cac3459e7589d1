#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]
//! The Gajim compatibility profile (issue 6) pinned to the facts of
//! `shared/notes/reference-behaviour.md`.
//!
//! The expected bytes are computed here, independently, from the documented
//! formulas with the `sha2`, `hmac`, `aes` and `num-bigint` crates directly,
//! never from our own output: a small model of Gajim (its forms as §2 prints
//! them, nbxmpp c14n of §4, MPIs of §5, keys of §6, identities of §7, SAS of
//! §8, the PyCrypto keystream and stanza MAC of §10, clear termination of §11)
//! plays the other side of our `SessionManager`, once as Alice (we are Bob)
//! and once as Bob (we are Alice). Then two of our own managers run the
//! profile against each other, and against the standard profile (which must
//! fail cleanly).

#[allow(dead_code, unreachable_pub, reason = "shared with two_party")]
mod harness;

use esession_crypto::GroupPrime;
use std::collections::HashMap;

use aes::Aes256;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use cipher::{BlockCipherEncrypt, KeyInit};
use esession::{
    Config, Error, Event, FixedClock, MemoryTrustStore, Output, Profile, SessionId, SessionInfo,
    SessionManager, SystemRandomness, TerminationReason,
};
use esession_crypto::{CipherAlgorithm, ModpGroup};
use esession_wire::minidom::Element;
use esession_wire::{ns, xml};
use hmac::{Hmac, Mac};
use num_bigint::BigUint;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use sha2::{Digest, Sha256};

/// The Gajim user (full JID) and us.
const GAJIM: &str = "gajim@example.net/Gajim";
const GAJIM_BARE: &str = "gajim@example.net";
const OURS: &str = "rust@example.org/esession";
const THREAD: &str = "AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEf";
/// §10 item 6: Gajim's fallback body.
const FALLBACK: &str =
    "[This is part of an encrypted session. If you see this message, something went wrong.]";
/// §8: the sas28x5 alphabet.
const ALPHABET: &[u8; 28] = b"acdefghikmopqruvwxy123456789";

// ---------------------------------------------------------------------------
// The documented formulas, written out with the primitive crates.

fn sha256(parts: &[&[u8]]) -> Vec<u8> {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().to_vec()
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap();
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().to_vec()
}

/// §5 `encode_mpi`: minimal big-endian, zero as one `00` octet.
fn mpi(n: &BigUint) -> Vec<u8> {
    n.to_bytes_be()
}

fn mpi_u128(c: u128) -> Vec<u8> {
    mpi(&BigUint::from(c))
}

/// §5 `encode_mpi_with_padding` of a counter: 16 bytes.
fn padded(c: u128) -> Vec<u8> {
    c.to_be_bytes().to_vec()
}

/// §6: the six keys are full HMAC-SHA256 outputs.
struct Keys {
    kc: Vec<u8>,
    km: Vec<u8>,
    ks: Vec<u8>,
}

fn keys(k: &[u8], side: &str) -> Keys {
    Keys {
        kc: hmac(k, &[format!("{side} Cipher Key").as_bytes()]),
        km: hmac(k, &[format!("{side} MAC Key").as_bytes()]),
        ks: hmac(k, &[format!("{side} SIGMA Key").as_bytes()]),
    }
}

/// §10 item 4 (PyCrypto MODE_CTR with Gajim's pre-incrementing callback):
/// block i of a direction is AES-256(KC, C+i) with C+1 first; the spare
/// keystream of a partial block is used by the next call.
struct Stream {
    aes: Aes256,
    c: u128,
    spare: Vec<u8>,
}

impl Stream {
    fn new(kc: &[u8], c: u128) -> Self {
        assert_eq!(kc.len(), 32, "fact 1: the full 32-byte key");
        Self {
            aes: Aes256::new_from_slice(kc).unwrap(),
            c,
            spare: Vec::new(),
        }
    }

    fn apply(&mut self, data: &[u8]) -> Vec<u8> {
        data.iter()
            .map(|b| {
                if self.spare.is_empty() {
                    self.c += 1;
                    let mut block = self.c.to_be_bytes();
                    self.aes.encrypt_block((&mut block).into());
                    self.spare = block.to_vec();
                }
                b ^ self.spare.remove(0)
            })
            .collect()
    }
}

/// §8: base-28 of the last 3 bytes, most significant first, no padding.
fn sas(m_a: &[u8], form_b: &[u8]) -> String {
    let h = sha256(&[m_a, form_b, b"Short Authentication String"]);
    let mut n = u32::from_be_bytes([0, h[29], h[30], h[31]]);
    let mut digits = Vec::new();
    loop {
        digits.push(ALPHABET[(n % 28) as usize]);
        n /= 28;
        if n == 0 {
            break;
        }
    }
    digits.reverse();
    String::from_utf8(digits).unwrap()
}

/// §4: nbxmpp c14n of one element whose parent is in `parent_ns`. The model's
/// forms have no text beside child elements.
fn c14n(el: &Element, parent_ns: &str) -> String {
    let esc_attr = |v: &str| {
        v.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('"', "&quot;")
            .replace('\t', "&#x9;")
            .replace('\n', "&#xA;")
            .replace('\r', "&#xD;")
    };
    let esc_text = |v: &str| {
        v.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('\r', "&#xD;")
    };
    let mut s = format!("<{}", el.name());
    if el.ns() != parent_ns {
        s += &format!(" xmlns=\"{}\"", el.ns());
    }
    // Python string order of the attribute names used in forms.
    for name in ["label", "type", "var"] {
        if let Some(v) = el.attr(name) {
            s += &format!(" {name}=\"{}\"", esc_attr(v));
        }
    }
    let kids: Vec<&Element> = el.children().collect();
    let text = el.text();
    if kids.is_empty() && text.is_empty() {
        return s + " />";
    }
    s += ">";
    s += &esc_text(&text);
    for kid in kids {
        s += &c14n(kid, &el.ns());
    }
    s + &format!("</{}>", el.name())
}

/// §4: the form content: c14n of each child of `<x/>`, minus `without` fields.
fn form_content(x: &Element, without: &[&str]) -> Vec<u8> {
    x.children()
        .filter(|f| !f.attr("var").is_some_and(|v| without.contains(&v)))
        .map(|f| c14n(f, &x.ns()))
        .collect::<String>()
        .into_bytes()
}

fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

fn unb64(text: &str) -> Vec<u8> {
    B64.decode(text.trim()).unwrap()
}

/// One `<field/>` as Gajim writes it: `var` first, then `type` (§2).
fn gfield(var: &str, values: &[&str]) -> String {
    let values: String = values
        .iter()
        .map(|v| format!("<value>{v}</value>"))
        .collect();
    format!("<field var=\"{var}\" type=\"text-single\">{values}</field>")
}

fn group_prime(group: ModpGroup) -> BigUint {
    BigUint::from_bytes_be(&group.prime_bytes())
}

/// A DH key pair with a private exponent in [2^255, 2^256) (§5).
fn dh(group: ModpGroup, seed: u8) -> (BigUint, BigUint) {
    let mut bytes = sha256(&[&[seed], b"exponent"]);
    bytes[0] |= 0x80;
    let x = BigUint::from_bytes_be(&bytes);
    let e = BigUint::from(2u8).modpow(&x, &group_prime(group));
    (x, e)
}

// ---------------------------------------------------------------------------
// Reading our stanzas.

fn parse(text: &str) -> Element {
    xml::parse_document(text).unwrap()
}

/// Serializes and parses back, as a stream would.
fn wire(stanza: &Element) -> Element {
    parse(&xml::serialize(stanza, "").unwrap())
}

fn form_of(stanza: &Element) -> Element {
    stanza
        .children()
        .find(|c| c.is("feature", ns::FEATURE_NEG) || c.is("init", ns::ESESSION_INIT))
        .and_then(|w| w.get_child("x", ns::DATA_FORMS))
        .unwrap_or_else(|| panic!("no form in {}", xml::serialize(stanza, "").unwrap()))
        .clone()
}

/// var -> (values, option values) of a form.
fn fields(x: &Element) -> HashMap<String, (Vec<String>, Vec<String>)> {
    x.children()
        .filter(|f| f.is("field", ns::DATA_FORMS))
        .map(|f| {
            let values = f
                .children()
                .filter(|c| c.is("value", ns::DATA_FORMS))
                .map(Element::text)
                .collect();
            let options = f
                .children()
                .filter(|c| c.is("option", ns::DATA_FORMS))
                .filter_map(|o| o.get_child("value", ns::DATA_FORMS).map(Element::text))
                .collect();
            (f.attr("var").unwrap().to_owned(), (values, options))
        })
        .collect()
}

fn one(fields: &HashMap<String, (Vec<String>, Vec<String>)>, var: &str) -> String {
    match &fields.get(var).unwrap_or_else(|| panic!("no {var}")).0[..] {
        [v] => v.clone(),
        other => panic!("{var}: {other:?}"),
    }
}

fn our_manager(seed: u64) -> SessionManager {
    let mut config = Config {
        own_jid: Some(OURS.to_owned()),
        // A client whose server archive is confirmed off, conceding (ARC-03):
        // it offers `may, mustnot` as Gajim did.
        otr_policy: esession::OtrPolicy::Concede,
        off_the_record_possible: true,
        ..Config::default()
    };
    config
        .profiles
        .insert(GAJIM_BARE.to_owned(), Profile::gajim());
    SessionManager::new(
        config,
        Box::new(SystemRandomness::new(ChaCha20Rng::seed_from_u64(seed))),
        Box::new(MemoryTrustStore::new()),
        Box::new(FixedClock(1_700_000_000)),
    )
    .unwrap()
}

fn established(out: &Output) -> SessionInfo {
    out.events
        .iter()
        .find_map(|e| match e {
            Event::Established { info, .. } => Some(info.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("not established: {:?}", out.events))
}

fn received_bodies(out: &Output) -> Vec<String> {
    out.events
        .iter()
        .filter_map(|e| match e {
            Event::MessageReceived { message, .. } => message
                .get_child("body", ns::JABBER_CLIENT)
                .map(Element::text),
            _ => None,
        })
        .collect()
}

/// A `<c/>` as Gajim checks it (§10 receiving): a_mac over `<data>B64</data>`
/// and the 16-byte padded C, then the continuous stream. Returns the text.
fn gajim_decrypts(stanza: &Element, km: &[u8], stream: &mut Stream) -> String {
    let c = stanza.get_child("c", ns::STANZA_ENCRYPTION).expect("<c/>");
    let data = c.get_child("data", ns::STANZA_ENCRYPTION).unwrap().text();
    let mac = unb64(&c.get_child("mac", ns::STANZA_ENCRYPTION).unwrap().text());
    let m_content = format!("<data>{data}</data>");
    let padded_mac = hmac(km, &[m_content.as_bytes(), &padded(stream.c)]);
    assert_eq!(mac, padded_mac, "fact 4: Gajim verifies with the padded C");
    let ciphertext = unb64(&data);
    assert_eq!(ciphertext.len() % 16, 0, "fact 5: padded to 16 bytes");
    String::from_utf8(stream.apply(&ciphertext)).unwrap()
}

/// A message as Gajim sends it (§10 sending): plaintext padded with spaces to
/// a multiple of 16 characters (Python 3), a_mac over the minimal C before,
/// fallback body and hints after `<c/>`.
fn gajim_message(thread: &str, body: &str, km: &[u8], stream: &mut Stream) -> Element {
    let mut plain = format!(
        "<body>{body}</body><active xmlns=\"http://jabber.org/protocol/chatstates\" /><request xmlns=\"urn:xmpp:receipts\" />"
    );
    while plain.chars().count() % 16 != 0 {
        plain.push(' ');
    }
    let before = stream.c;
    let data = b64(&stream.apply(plain.as_bytes()));
    let mac = hmac(
        km,
        &[format!("<data>{data}</data>").as_bytes(), &mpi_u128(before)],
    );
    parse(&format!(
        "<message xmlns='jabber:client' from='{GAJIM}' to='{OURS}' type='chat'><thread>{thread}</thread>\
         <c xmlns='{}'><data>{data}</data><mac>{}</mac></c><body>{FALLBACK}</body>\
         <no-permanent-store xmlns='urn:xmpp:hints'/><no-copy xmlns='urn:xmpp:hints'/></message>",
        ns::STANZA_ENCRYPTION,
        b64(&mac)
    ))
}

/// §2 "Termination" / §11: Gajim's clear-text terminate form.
fn gajim_terminate() -> Element {
    parse(&format!(
        "<message xmlns='jabber:client' from='{GAJIM}' to='{OURS}'><thread>{THREAD}</thread>\
         <feature xmlns='{}'><x xmlns='jabber:x:data' type='submit'>{}{}</x></feature></message>",
        ns::FEATURE_NEG,
        gfield("FORM_TYPE", &[ns::SSN]),
        gfield("terminate", &["1"])
    ))
}

// ---------------------------------------------------------------------------
// §2 message 1 and the formA normalization example (§4), byte for byte.

/// Gajim's message 1 form exactly as §2 prints it (one line; `var` before
/// `type`; `<required />`; options of `modp` with `label="None"`).
fn gajim_offer_x(n_a: &str, he: [&str; 3]) -> String {
    format!(
        concat!(
            "<x xmlns=\"jabber:x:data\" type=\"form\">",
            "<field var=\"FORM_TYPE\" type=\"hidden\"><value>urn:xmpp:ssn</value></field>",
            "<field var=\"accept\" type=\"boolean\"><value>1</value><required /></field>",
            "<field var=\"logging\" type=\"list-single\"><required /><option><value>may</value></option><option><value>mustnot</value></option></field>",
            "<field var=\"disclosure\" type=\"list-single\"><required /><option><value>never</value></option></field>",
            "<field var=\"security\" type=\"list-single\"><required /><option><value>e2e</value></option></field>",
            "<field var=\"crypt_algs\" type=\"hidden\"><value>aes128-ctr</value></field>",
            "<field var=\"hash_algs\" type=\"hidden\"><value>sha256</value></field>",
            "<field var=\"compress\" type=\"hidden\"><value>none</value></field>",
            "<field var=\"stanzas\" type=\"list-multi\"><option><value>message</value></option></field>",
            "<field var=\"init_pubkey\" type=\"list-single\"><option><value>none</value></option><option><value>key</value></option><option><value>hash</value></option></field>",
            "<field var=\"resp_pubkey\" type=\"list-single\"><option><value>none</value></option><option><value>key</value></option></field>",
            "<field var=\"ver\" type=\"hidden\"><value>1.0</value></field>",
            "<field var=\"rekey_freq\" type=\"hidden\"><value>4294967295</value></field>",
            "<field var=\"sas_algs\" type=\"hidden\"><value>sas28x5</value></field>",
            "<field var=\"sign_algs\" type=\"hidden\"><value>http://www.w3.org/2000/09/xmldsig#rsa-sha256</value></field>",
            "<field var=\"my_nonce\" type=\"hidden\"><value>{n_a}</value></field>",
            "<field var=\"modp\" type=\"list-single\"><option label=\"None\"><value>15</value></option><option label=\"None\"><value>16</value></option><option label=\"None\"><value>14</value></option></field>",
            "<field var=\"dhhashes\" type=\"hidden\"><value>{h0}</value><value>{h1}</value><value>{h2}</value></field>",
            "</x>"
        ),
        n_a = n_a,
        h0 = he[0],
        h1 = he[1],
        h2 = he[2]
    )
}

#[test]
fn forma_of_gajims_offer_is_nbxmpp_c14n_byte_for_byte() {
    // §4 and fact 7, written out by hand for all 18 fields of §2's message 1:
    // sorted attributes (label < type < var), `<required />`, label="None",
    // no <x/> wrapper, no xmlns, fields in received order.
    let x = parse(&gajim_offer_x("AAECAwQFBgc=", ["SDA=", "SDE=", "SDI="]));
    let expected = concat!(
        r#"<field type="hidden" var="FORM_TYPE"><value>urn:xmpp:ssn</value></field>"#,
        r#"<field type="boolean" var="accept"><value>1</value><required /></field>"#,
        r#"<field type="list-single" var="logging"><required /><option><value>may</value></option><option><value>mustnot</value></option></field>"#,
        r#"<field type="list-single" var="disclosure"><required /><option><value>never</value></option></field>"#,
        r#"<field type="list-single" var="security"><required /><option><value>e2e</value></option></field>"#,
        r#"<field type="hidden" var="crypt_algs"><value>aes128-ctr</value></field>"#,
        r#"<field type="hidden" var="hash_algs"><value>sha256</value></field>"#,
        r#"<field type="hidden" var="compress"><value>none</value></field>"#,
        r#"<field type="list-multi" var="stanzas"><option><value>message</value></option></field>"#,
        r#"<field type="list-single" var="init_pubkey"><option><value>none</value></option><option><value>key</value></option><option><value>hash</value></option></field>"#,
        r#"<field type="list-single" var="resp_pubkey"><option><value>none</value></option><option><value>key</value></option></field>"#,
        r#"<field type="hidden" var="ver"><value>1.0</value></field>"#,
        r#"<field type="hidden" var="rekey_freq"><value>4294967295</value></field>"#,
        r#"<field type="hidden" var="sas_algs"><value>sas28x5</value></field>"#,
        r#"<field type="hidden" var="sign_algs"><value>http://www.w3.org/2000/09/xmldsig#rsa-sha256</value></field>"#,
        r#"<field type="hidden" var="my_nonce"><value>AAECAwQFBgc=</value></field>"#,
        r#"<field type="list-single" var="modp"><option label="None"><value>15</value></option><option label="None"><value>16</value></option><option label="None"><value>14</value></option></field>"#,
        r#"<field type="hidden" var="dhhashes"><value>SDA=</value><value>SDE=</value><value>SDI=</value></field>"#,
    );
    let ours = esession_wire::normalize::nbxmpp_form_content(&x, &[]).unwrap();
    assert_eq!(String::from_utf8(ours).unwrap(), expected);
    // The documented prefix of §4, literally.
    assert!(expected.starts_with(
        r#"<field type="hidden" var="FORM_TYPE"><value>urn:xmpp:ssn</value></field><field type="boolean" var="accept"><value>1</value><required /></field>"#
    ));
    // And the standard NORM differs (start/end pairs): the profile matters.
    let norm = esession_wire::normalize::try_normalize_form_content(&x, &[]).unwrap();
    assert_ne!(norm, expected.as_bytes());
}

#[test]
fn the_sas_rule_is_base28_unpadded_most_significant_first() {
    // §8 worked example: find inputs whose last three hash bytes are below
    // 28^4 and check the digits by hand, plus the documented edge values.
    let form_b = b"<field var=\"FORM_TYPE\"><value>urn:xmpp:ssn</value></field>";
    let mut short = None;
    for i in 0u32..2000 {
        let m_a = sha256(&[&i.to_be_bytes()]);
        let h = sha256(&[&m_a, form_b, b"Short Authentication String"]);
        let n = u32::from_be_bytes([0, h[29], h[30], h[31]]);
        let ours =
            esession_crypto::sas28x5_unpadded(esession_crypto::HashAlgorithm::Sha256, &m_a, form_b);
        assert_eq!(ours, sas(&m_a, form_b));
        // Written out: five digits d4..d0 of n, leading zero digits dropped.
        let digits: Vec<u32> = (0..5).rev().map(|k| n / 28u32.pow(k) % 28).collect();
        let first = digits.iter().position(|d| *d != 0).unwrap_or(4);
        let by_hand: String = digits[first..]
            .iter()
            .map(|d| ALPHABET[*d as usize] as char)
            .collect();
        assert_eq!(ours, by_hand, "n = {n}");
        if n < 614_656 {
            short = Some(ours);
        }
    }
    let short = short.expect("about 3.7 % of SAS values are short");
    assert!(short.len() < 5, "{short}");
}

// ---------------------------------------------------------------------------
// Gajim as Alice, our client as Bob.

#[test]
fn gajim_as_alice_negotiates_chats_and_terminates_with_us_as_bob() {
    let mut bob = our_manager(61);
    // Message 1 (§2): Gajim offers groups 15, 16, 14 with one x per group.
    let n_a = [0xa1u8, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8]; // 8 bytes (fact 6)
    let groups = [ModpGroup::Group15, ModpGroup::Group16, ModpGroup::Group14];
    let pairs: Vec<(BigUint, BigUint)> = groups
        .iter()
        .enumerate()
        .map(|(i, g)| dh(*g, i as u8))
        .collect();
    let he: Vec<String> = pairs
        .iter()
        .map(|(_, e)| b64(&sha256(&[&mpi(e)])))
        .collect();
    let x1_text = gajim_offer_x(&b64(&n_a), [&he[0], &he[1], &he[2]]);
    let x1 = parse(&x1_text);
    let form_a = form_content(&x1, &[]);
    let offer = parse(&format!(
        "<message xmlns='jabber:client' from='{GAJIM}' to='{OURS}'><thread>{THREAD}</thread><feature xmlns='{}'>{x1_text}</feature></message>",
        ns::FEATURE_NEG
    ));
    let out = bob.handle_stanza(&offer);
    assert_eq!(out.stanzas.len(), 1, "{:?}", out.events);
    let raw = xml::serialize(&out.stanzas[0], "").unwrap();
    assert!(
        !raw.contains("<field xmlns") && !raw.contains("<value xmlns"),
        "{raw}"
    );
    let msg2 = wire(&out.stanzas[0]);
    assert!(msg2.get_child("feature", ns::FEATURE_NEG).is_some());
    let x2 = form_of(&msg2);
    assert_eq!(x2.attr("type"), Some("submit"));
    let f2 = fields(&x2);
    // §2 message 2 and §17: what Gajim-as-Alice reads.
    assert_eq!(one(&f2, "accept"), "true");
    assert_eq!(one(&f2, "modp"), "15", "Alice's first group");
    assert_eq!(one(&f2, "logging"), "may", "Alice's first option");
    assert_eq!(one(&f2, "ver"), "1.0");
    assert_eq!(one(&f2, "crypt_algs"), "aes128-ctr");
    assert_eq!(one(&f2, "init_pubkey"), "none");
    assert_eq!(one(&f2, "resp_pubkey"), "none");
    assert_eq!(unb64(&one(&f2, "nonce")), n_a);
    let n_b = unb64(&one(&f2, "my_nonce"));
    assert_eq!(n_b.len(), 8, "§17: nonces are 8 bytes");
    let counter = unb64(&one(&f2, "counter"));
    assert_eq!(counter.len(), 16);
    assert!(!matches!(counter[0], 0x00 | 0x80), "§17: C_A top octet");
    let c_a = u128::from_be_bytes(counter.try_into().unwrap());
    let c_b = c_a ^ (1 << 127);
    // Message 2 carries no type attributes and no xmlns below <x/>.
    for f in x2.children() {
        assert_eq!(f.attr("type"), None);
    }
    let form_b = form_content(&x2, &[]);

    // §5/§6: K = SHA256(mpi(d^x mod p)), provisional initiator keys.
    let p = group_prime(ModpGroup::Group15);
    let d = BigUint::from_bytes_be(&unb64(&one(&f2, "dhkeys")));
    let (x, e) = &pairs[0];
    let k = sha256(&[&mpi(&d.modpow(x, &p))]);
    let provisional = keys(&k, "Initiator");

    // Message 3 (§2): all fields typed text-single, as Gajim builds them.
    let rshash = sha256(&[b"no retained secret"]);
    let head = format!(
        "{}{}{}{}{}",
        gfield("FORM_TYPE", &[ns::SSN]),
        gfield("accept", &["1"]),
        gfield("nonce", &[&b64(&n_b)]),
        gfield("rshashes", &[&b64(&rshash)]),
        gfield("dhkeys", &[&b64(&mpi(e))]),
    );
    let form_a2 = form_content(
        &parse(&format!(
            "<x xmlns='jabber:x:data' type='result'>{head}</x>"
        )),
        &[],
    );
    // §7: macA, ID_A from C_A+1, M_A over the minimal C_A.
    let mac_a = hmac(&provisional.ks, &[&n_b, &n_a, &mpi(e), &form_a, &form_a2]);
    let id_a = Stream::new(&provisional.kc, c_a).apply(&mac_a);
    let m_a = hmac(&provisional.km, &[&mpi_u128(c_a), &id_a]);
    let msg3 = parse(&format!(
        "<message xmlns='jabber:client' from='{GAJIM}' to='{OURS}'><thread>{THREAD}</thread><feature xmlns='{}'><x xmlns='jabber:x:data' type='result'>{head}{}{}</x></feature></message>",
        ns::FEATURE_NEG,
        gfield("identity", &[&b64(&id_a)]),
        gfield("mac", &[&b64(&m_a)])
    ));
    let out = bob.handle_stanza(&msg3);
    let info = established(&out);
    assert_eq!(info.sas, sas(&m_a, &form_b), "fact 9");
    assert_eq!(info.cipher, CipherAlgorithm::Aes256Ctr, "fact 1");
    assert_eq!(info.group, ModpGroup::Group15);
    assert_eq!(out.stanzas.len(), 1);
    let msg4 = wire(&out.stanzas[0]);
    assert!(
        msg4.get_child("init", ns::ESESSION_INIT).is_some(),
        "fact 10: message 4 in <init/>"
    );
    let x4 = form_of(&msg4);
    assert_eq!(x4.attr("type"), Some("result"));
    let f4 = fields(&x4);
    assert_eq!(unb64(&one(&f4, "nonce")), n_a);
    // §6: K_final = SHA256(K_dh) without a retained secret; ID_B under the final keys.
    let k_final = sha256(&[&k]);
    let initiator = keys(&k_final, "Initiator");
    let responder = keys(&k_final, "Responder");
    let id_b = unb64(&one(&f4, "identity"));
    assert_eq!(
        unb64(&one(&f4, "mac")),
        hmac(&responder.km, &[&mpi_u128(c_b), &id_b]),
        "§7: M_B over the minimal C_B"
    );
    let mut from_bob = Stream::new(&responder.kc, c_b);
    let form_b2 = form_content(&x4, &["identity", "mac"]);
    assert_eq!(
        from_bob.apply(&id_b),
        hmac(&responder.ks, &[&n_a, &n_b, &mpi(&d), &form_b, &form_b2]),
        "§7: macB"
    );
    assert_eq!(from_bob.c, c_b + 2);

    // Our messages (§10): C_B+3 first, padded with spaces, fallback body.
    let id = SessionId {
        peer: GAJIM.parse().unwrap(),
        thread: THREAD.to_owned(),
    };
    for text in ["Hello Gajim, this is Bob.", "Grüße ✓"] {
        let out = bob.send_text(&id, text).unwrap();
        assert_eq!(out.stanzas.len(), 1);
        let stanza = wire(&out.stanzas[0]);
        let names: Vec<&str> = stanza.children().map(Element::name).collect();
        assert_eq!(&names[..3], ["thread", "c", "body"], "{names:?}");
        assert_eq!(
            stanza.get_child("body", ns::JABBER_CLIENT).unwrap().text(),
            FALLBACK
        );
        let plain = gajim_decrypts(&stanza, &responder.km, &mut from_bob);
        let content = plain.trim_end_matches(' ');
        assert_eq!(content, format!("<body>{text}</body>"));
        assert!(
            plain.len() - content.len() < 16,
            "never a whole extra block"
        );
    }

    // Gajim's messages (§10, Python 3): padded by characters, so the payload is
    // not block-aligned and the next one starts with spare keystream.
    let mut from_alice = Stream::new(&initiator.kc, c_a + 2);
    let mut bodies = Vec::new();
    for text in ["Grüße, Bob! Schöne Grüße", "Zweite Nachricht ✓", "third"] {
        let stanza = gajim_message(THREAD, text, &initiator.km, &mut from_alice);
        let out = bob.handle_stanza(&stanza);
        assert!(out.stanzas.is_empty(), "{:?}", out.events);
        bodies.extend(received_bodies(&out));
    }
    assert_eq!(
        bodies,
        ["Grüße, Bob! Schöne Grüße", "Zweite Nachricht ✓", "third"]
    );
    assert!(
        !from_alice.spare.is_empty(),
        "the test did carry keystream over"
    );

    // §11: Gajim's clear-text terminate ends the session, no acknowledgement.
    let out = bob.handle_stanza(&gajim_terminate());
    assert!(out.stanzas.is_empty());
    assert!(
        out.events.iter().any(|e| matches!(
            e,
            Event::Terminated {
                reason: TerminationReason::PeerRequest,
                ..
            }
        )),
        "{:?}",
        out.events
    );
    assert!(!bob.is_established(&id));
}

// ---------------------------------------------------------------------------
// Gajim as Bob, our client as Alice.

/// Runs a whole session with a modelled Gajim (0.16, Python 2) as Bob that
/// chooses `c_a`.
fn gajim_as_bob(c_a: u128) {
    let mut alice = our_manager(62);
    let (id, out) = alice.start_session(GAJIM).unwrap();
    assert_eq!(out.stanzas.len(), 1);
    let raw = xml::serialize(&out.stanzas[0], "").unwrap();
    // §4/§17: Gajim treats us as "buggy" (no rosterx), so no element below
    // <x/> may carry an explicit xmlns.
    for tag in [
        "<field xmlns",
        "<value xmlns",
        "<option xmlns",
        "<required xmlns",
    ] {
        assert!(!raw.contains(tag), "{raw}");
    }
    let msg1 = wire(&out.stanzas[0]);
    let x1 = form_of(&msg1);
    assert_eq!(x1.attr("type"), Some("form"));
    let f1 = fields(&x1);
    // §3 "Bob (Gajim) receiving message 1": each fixed field offers exactly the
    // one value Gajim accepts; logging is present; groups 15, 16, 14 (§5).
    for (var, value) in [
        ("disclosure", "never"),
        ("security", "e2e"),
        ("crypt_algs", "aes128-ctr"),
        ("hash_algs", "sha256"),
        ("compress", "none"),
        ("stanzas", "message"),
        ("init_pubkey", "none"),
        ("resp_pubkey", "none"),
        ("ver", "1.0"),
        ("sas_algs", "sas28x5"),
    ] {
        let (values, options) = &f1[var];
        let offered = if options.is_empty() { values } else { options };
        assert_eq!(offered, &[value.to_owned()], "{var}");
    }
    assert_eq!(f1["logging"].1, ["may", "mustnot"]);
    assert_eq!(f1["modp"].1, ["15", "16", "14"]);
    assert_eq!(f1["dhhashes"].0.len(), 3);
    assert!(!f1.contains_key("dhkeys"), "no 3-message offer");
    let n_a = unb64(&one(&f1, "my_nonce"));
    assert_eq!(n_a.len(), 8, "§17: nonces are 8 bytes");
    let form_a = form_content(&x1, &[]);

    // Gajim-as-Bob takes the first group and the first dhhashes value (§3).
    let he = unb64(&f1["dhhashes"].0[0]);
    let p = group_prime(ModpGroup::Group15);
    let (y, d) = dh(ModpGroup::Group15, 99);
    let n_b = [0xb1u8, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8];
    let c_b = c_a ^ (1 << 127);
    // Message 2 in G16's field order (§16), every field text-single.
    let x2_text = format!(
        "<x xmlns='jabber:x:data' type='submit'>{}</x>",
        [
            gfield("FORM_TYPE", &[ns::SSN]),
            gfield("accept", &["true"]),
            gfield("crypt_algs", &["aes128-ctr"]),
            gfield("disclosure", &["never"]),
            gfield("logging", &["may"]),
            gfield("compress", &["none"]),
            gfield("init_pubkey", &["none"]),
            gfield("stanzas", &["message"]),
            gfield("hash_algs", &["sha256"]),
            gfield("ver", &["1.0"]),
            gfield("sas_algs", &["sas28x5"]),
            gfield("resp_pubkey", &["none"]),
            gfield("security", &["e2e"]),
            gfield("rekey_freq", &[&one(&f1, "rekey_freq")]),
            gfield("modp", &["15"]),
            gfield("nonce", &[&b64(&n_a)]),
            gfield("my_nonce", &[&b64(&n_b)]),
            gfield("counter", &[&b64(&mpi_u128(c_a))]),
            gfield("dhkeys", &[&b64(&mpi(&d))]),
        ]
        .concat()
    );
    let form_b = form_content(&parse(&x2_text), &[]);
    let msg2 = parse(&format!(
        "<message xmlns='jabber:client' from='{GAJIM}' to='{OURS}'><thread>{}</thread><feature xmlns='{}'>{x2_text}</feature></message>",
        id.thread,
        ns::FEATURE_NEG
    ));
    let out = alice.handle_stanza(&msg2);
    assert_eq!(out.stanzas.len(), 1, "{:?}", out.events);
    let msg3 = wire(&out.stanzas[0]);
    assert!(msg3.get_child("feature", ns::FEATURE_NEG).is_some());
    let x3 = form_of(&msg3);
    assert_eq!(x3.attr("type"), Some("result"));
    let f3 = fields(&x3);
    assert_eq!(one(&f3, "accept"), "1");
    assert_eq!(unb64(&one(&f3, "nonce")), n_b);
    let e = BigUint::from_bytes_be(&unb64(&one(&f3, "dhkeys")));
    assert_eq!(sha256(&[&mpi(&e)]), he, "He = SHA256(mpi(e))");
    let k = sha256(&[&mpi(&e.modpow(&y, &p))]);
    let provisional = keys(&k, "Initiator");
    let id_a = unb64(&one(&f3, "identity"));
    let m_a = unb64(&one(&f3, "mac"));
    assert_eq!(
        m_a,
        hmac(&provisional.km, &[&mpi_u128(c_a), &id_a]),
        "§7: M_A over the minimal C_A"
    );
    if c_a >> 120 == 0 {
        assert_ne!(m_a, hmac(&provisional.km, &[&padded(c_a), &id_a]));
    }
    let form_a2 = form_content(&x3, &["identity", "mac"]);
    assert_eq!(
        Stream::new(&provisional.kc, c_a).apply(&id_a),
        hmac(&provisional.ks, &[&n_b, &n_a, &mpi(&e), &form_a, &form_a2]),
        "§7: macA, ID_A from C_A+1"
    );
    let gajim_sas = sas(&m_a, &form_b);

    // Message 4 in <init/> (§2), under the final keys.
    let k_final = sha256(&[&k]);
    let initiator = keys(&k_final, "Initiator");
    let responder = keys(&k_final, "Responder");
    let srshash = sha256(&[b"random srshash"]);
    let head = format!(
        "{}{}{}",
        gfield("FORM_TYPE", &[ns::SSN]),
        gfield("nonce", &[&b64(&n_a)]),
        gfield("srshash", &[&b64(&srshash)])
    );
    let form_b2 = form_content(
        &parse(&format!(
            "<x xmlns='jabber:x:data' type='result'>{head}</x>"
        )),
        &[],
    );
    let mut from_bob = Stream::new(&responder.kc, c_b);
    let mac_b = hmac(&responder.ks, &[&n_a, &n_b, &mpi(&d), &form_b, &form_b2]);
    let id_b = from_bob.apply(&mac_b);
    let m_b = hmac(&responder.km, &[&mpi_u128(c_b), &id_b]);
    let msg4 = parse(&format!(
        "<message xmlns='jabber:client' from='{GAJIM}' to='{OURS}'><thread>{}</thread><init xmlns='{}'><x xmlns='jabber:x:data' type='result'>{head}{}{}</x></init></message>",
        id.thread,
        ns::ESESSION_INIT,
        gfield("identity", &[&b64(&id_b)]),
        gfield("mac", &[&b64(&m_b)])
    ));
    let out = alice.handle_stanza(&msg4);
    assert!(out.stanzas.is_empty(), "{:?}", out.events);
    let info = established(&out);
    assert_eq!(info.sas, gajim_sas, "fact 9");
    assert_eq!(info.cipher, CipherAlgorithm::Aes256Ctr, "fact 1");
    assert!(info.we_initiated);

    // Our messages: the first block is C_A+3 (fact 2); a_mac with the padded C.
    let mut from_alice = Stream::new(&initiator.kc, c_a + 2);
    for text in ["Hello Bob", "Grüße ✓ ünïcödé"] {
        let out = alice.send_text(&id, text).unwrap();
        let stanza = wire(&out.stanzas[0]);
        if c_a >> 120 == 0 {
            // Gajim on Python 2 checks the padded form: the minimal one would fail.
            let c = stanza.get_child("c", ns::STANZA_ENCRYPTION).unwrap();
            let data = c.get_child("data", ns::STANZA_ENCRYPTION).unwrap().text();
            let mac = unb64(&c.get_child("mac", ns::STANZA_ENCRYPTION).unwrap().text());
            let minimal = hmac(
                &initiator.km,
                &[
                    format!("<data>{data}</data>").as_bytes(),
                    &mpi_u128(from_alice.c),
                ],
            );
            assert_ne!(mac, minimal);
        }
        let plain = gajim_decrypts(&stanza, &initiator.km, &mut from_alice);
        assert_eq!(plain.trim_end_matches(' '), format!("<body>{text}</body>"));
    }

    // Gajim's messages, with the minimal C in a_mac (top octet zero when C_B's is).
    let mut bodies = Vec::new();
    for text in ["Hi Alice, ça va?", "✓✓✓"] {
        let stanza = gajim_message(&id.thread, text, &responder.km, &mut from_bob);
        let out = alice.handle_stanza(&stanza);
        assert!(out.stanzas.is_empty(), "{:?}", out.events);
        bodies.extend(received_bodies(&out));
    }
    assert_eq!(bodies, ["Hi Alice, ça va?", "✓✓✓"]);

    // We terminate (§11, §17): the encrypted form, then the clear one; no ack awaited.
    let out = alice.terminate(&id).unwrap();
    assert_eq!(out.stanzas.len(), 2);
    assert!(out.events.iter().any(|e| matches!(
        e,
        Event::Terminated {
            reason: TerminationReason::LocalRequest,
            ..
        }
    )));
    assert!(!alice.is_established(&id));
    let encrypted = wire(&out.stanzas[0]);
    let plain = gajim_decrypts(&encrypted, &initiator.km, &mut from_alice);
    assert!(plain.contains("terminate"), "{plain}");
    let clear = wire(&out.stanzas[1]);
    assert_eq!(clear.attr("type"), None, "§11: no type attribute");
    assert!(clear.get_child("c", ns::STANZA_ENCRYPTION).is_none());
    assert!(clear.get_child("body", ns::JABBER_CLIENT).is_none());
    assert_eq!(
        clear.get_child("thread", ns::JABBER_CLIENT).unwrap().text(),
        id.thread
    );
    let xt = form_of(&clear);
    assert_eq!(xt.attr("type"), Some("submit"));
    let ft = fields(&xt);
    assert_eq!(one(&ft, "FORM_TYPE"), ns::SSN);
    assert_eq!(one(&ft, "terminate"), "1");
}

#[test]
fn gajim_as_bob_with_a_zero_top_octet_in_our_counter() {
    // §15 bug 2 run: C_A = 005a..5a. Our stanzas (C_A+3...) must carry the
    // padded counter in a_mac; M_A uses the minimal 15-byte C_A.
    gajim_as_bob(u128::from_be_bytes([
        0x00, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a,
        0x5a,
    ]));
}

#[test]
fn gajim_as_bob_with_a_zero_top_octet_in_its_counter() {
    // C_A = 805a..5a, so C_B = 005a..5a: Gajim's counter field, M_B and its
    // stanza MACs use the minimal 15-byte form, which we accept.
    gajim_as_bob(u128::from_be_bytes([
        0x80, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a,
        0x5a,
    ]));
}

#[test]
fn gajim_as_bob_with_an_ordinary_counter() {
    gajim_as_bob(0x3c00_1122_3344_5566_7788_99aa_bbcc_ddee);
}

// ---------------------------------------------------------------------------
// Our client against itself.

fn profiled(own: &str, peer: &str, profile: Profile) -> Config {
    let mut config = harness::config(own);
    config.groups = ModpGroup::ALL.to_vec();
    config
        .profiles
        .insert(peer.split('/').next().unwrap().to_owned(), profile);
    config
}

#[test]
fn two_of_our_clients_on_the_gajim_profile_chat_and_terminate() {
    let alice = profiled(harness::ALICE, harness::BOB, Profile::gajim());
    let bob = profiled(harness::BOB, harness::ALICE, Profile::gajim());
    let mut pair = harness::Pair::with_configs(alice, bob, 7);
    let thread = pair.handshake();
    let info = pair.alice.only_session().clone();
    assert_eq!(info.cipher, CipherAlgorithm::Aes256Ctr);
    assert_eq!(info.group, ModpGroup::Group15);
    let alice_id = harness::Pair::id(harness::Side::Alice, &thread);
    let bob_id = harness::Pair::id(harness::Side::Bob, &thread);
    for text in [
        "one",
        "Grüße ✓",
        "a somewhat longer third message of several blocks",
    ] {
        let out = pair.alice.manager.send_text(&alice_id, text).unwrap();
        pair.route(harness::Side::Alice, out);
        let out = pair.bob.manager.send_text(&bob_id, text).unwrap();
        pair.route(harness::Side::Bob, out);
    }
    assert_eq!(pair.bob.bodies().len(), 3);
    assert_eq!(pair.alice.bodies().len(), 3);
    assert!(pair.alice.manager.rekey(&alice_id).is_err(), "no rekeying");
    let out = pair.alice.manager.terminate(&alice_id).unwrap();
    pair.route(harness::Side::Alice, out);
    assert!(!pair.alice.manager.is_established(&alice_id));
    assert!(!pair.bob.manager.is_established(&bob_id));
    assert_eq!(
        pair.bob.terminations(),
        [&TerminationReason::PeerRequest],
        "ended once, by the encrypted form"
    );
}

fn fails_cleanly(alice: Config, bob: Config) {
    let mut pair = harness::Pair::with_configs(alice, bob, 8);
    pair.negotiate_with(|_, _| {});
    let failures: Vec<&Error> = pair
        .alice
        .failures()
        .into_iter()
        .chain(pair.bob.failures())
        .collect();
    assert!(!failures.is_empty(), "a clean refusal on at least one side");
    assert!(
        pair.alice.established().is_empty() && pair.bob.established().is_empty(),
        "nobody believes in a session"
    );
}

#[test]
fn a_standard_initiator_and_a_gajim_profile_responder_fail_cleanly() {
    let alice = profiled(harness::ALICE, harness::BOB, Profile::standard());
    let bob = profiled(harness::BOB, harness::ALICE, Profile::gajim());
    fails_cleanly(alice, bob);
}

#[test]
fn a_gajim_profile_initiator_and_a_standard_responder_fail_cleanly() {
    let alice = profiled(harness::ALICE, harness::BOB, Profile::gajim());
    let bob = profiled(harness::BOB, harness::ALICE, Profile::standard());
    fails_cleanly(alice, bob);
}

#[test]
fn the_gajim_profile_refuses_a_three_message_offer() {
    // §14 items 13/14: only the 4-message variant; dhkeys means 3 messages.
    let mut bob = our_manager(63);
    let (_, e) = dh(ModpGroup::Group15, 1);
    let x = gajim_offer_x("AAECAwQFBgc=", ["x", "y", "z"])
        .replace("dhhashes", "dhkeys")
        .replace(
            "<value>x</value><value>y</value><value>z</value>",
            &format!("<value>{}</value>", b64(&mpi(&e))),
        );
    let offer = parse(&format!(
        "<message xmlns='jabber:client' from='{GAJIM}' to='{OURS}'><thread>{THREAD}</thread><feature xmlns='{}'>{x}</feature></message>",
        ns::FEATURE_NEG
    ));
    let out = bob.handle_stanza(&offer);
    assert_eq!(out.stanzas.len(), 1);
    assert_eq!(out.stanzas[0].attr("type"), Some("error"));
    assert!(
        out.events
            .iter()
            .any(|e| matches!(e, Event::NegotiationFailed { .. }))
    );
}

#[test]
fn the_profile_is_selected_per_contact() {
    let mut manager = our_manager(64);
    assert_eq!(manager.profile_for(GAJIM), Profile::gajim());
    assert_eq!(
        manager.profile_for("other@example.net/x"),
        Profile::standard()
    );
    manager.set_profile("other@example.net/x", Profile::gajim());
    assert_eq!(manager.profile_for("other@example.net"), Profile::gajim());
    manager.set_profile(GAJIM, Profile::standard());
    assert_eq!(manager.profile_for(GAJIM_BARE), Profile::standard());
    // The offer to a standard contact is the standard one: 16-byte nonce, no 15-only groups.
    let (_, out) = manager.start_session(GAJIM).unwrap();
    let f = fields(&form_of(&wire(&out.stanzas[0])));
    assert_eq!(unb64(&one(&f, "my_nonce")).len(), 16);
    assert!(f["crypt_algs"].1.len() > 1);
    let (_, out) = manager.start_session("other@example.net/x").unwrap();
    let f = fields(&form_of(&wire(&out.stanzas[0])));
    assert_eq!(unb64(&one(&f, "my_nonce")).len(), 8);
    assert_eq!(f["modp"].1, ["15", "16", "14"]);
}
