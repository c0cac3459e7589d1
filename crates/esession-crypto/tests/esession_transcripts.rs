#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]
//! Crypto-level replay of the independent ESession transcripts in `vectors/`
//! (produced from docs/requirements.md by another implementation, seeded RNG).
//! Every derived value the crypto suite is responsible for must match byte for
//! byte: DH values and commitments (ESN-06), K (ESN-26/31), the six keys
//! (ESN-16), identity MACs and their encryption (ESN-19/22/24/28), the SAS
//! (ESN-33), K_final with SRS and OSS (ESN-36), srshash/rshash/RS_new
//! (ESN-30/37/40), and per-stanza data and MACs (ENC-06/09).

use esession_crypto::Hashing;
use esession_crypto::dh::negotiation_secret;
use esession_crypto::kdf::{
    SessionKeys, final_shared_secret, new_retained_secret, retained_secret_hash,
    shared_retained_secret_hash,
};
use esession_crypto::{
    CipherAlgorithm, Counter, CtrCipher, DhKeyPair, DhPublicValue, HashAlgorithm, ModpGroup,
    SecretBytes, sas28x5,
};
use serde_json::Value;

const SHA256: HashAlgorithm = HashAlgorithm::Sha256;
const AES128: CipherAlgorithm = CipherAlgorithm::Aes128Ctr;

fn load(name: &str) -> Value {
    let path = format!("{}/../../vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn h(v: &Value, key: &str) -> Vec<u8> {
    hex::decode(v[key].as_str().unwrap_or_else(|| panic!("missing {key}"))).unwrap()
}

fn counter(v: &Value, key: &str) -> Counter {
    Counter::from_wire(&h(v, key)).unwrap()
}

fn ctr(key: &SecretBytes, start: Counter, data: &[u8]) -> Vec<u8> {
    let cipher = CtrCipher::new(AES128, key.expose()).unwrap();
    let mut c = start;
    let mut out = data.to_vec();
    cipher.apply(&mut c, &mut out);
    out
}

fn replay(name: &str, oss: Option<&str>) {
    let vector = load(name);
    let alice = &vector["derived"]["alice"];
    let bob = &vector["derived"]["bob"];

    // ESN-06: e and He for every offered group, in offer order 5, 14, 2, 1.
    for id in [5u32, 14, 2, 1] {
        let group = ModpGroup::from_id(id).unwrap();
        let pair = DhKeyPair::from_private_exponent(group, &h(alice, &format!("x_{id}"))).unwrap();
        assert_eq!(
            pair.public().to_mpi(),
            &h(alice, &format!("e_{id}"))[..],
            "e_{id}"
        );
        assert_eq!(
            pair.public().commitment(),
            h(alice, &format!("He_{id}")),
            "He_{id}"
        );
    }

    // ESN-13/26/31: d from y; K = SHA256(MPI(shared)) on both sides.
    let group = ModpGroup::Group5;
    let x = DhKeyPair::from_private_exponent(group, &h(alice, "x")).unwrap();
    let y = DhKeyPair::from_private_exponent(group, &h(bob, "y")).unwrap();
    assert_eq!(y.public().to_mpi(), &h(bob, "d")[..]);
    let d = DhPublicValue::from_bytes(group, &h(alice, "d")).unwrap();
    let e = DhPublicValue::from_bytes(group, &h(bob, "e")).unwrap();
    let k_alice = negotiation_secret(SHA256, &x.agree(&d).unwrap());
    let k_bob = negotiation_secret(SHA256, &y.agree(&e).unwrap());
    assert_eq!(k_alice.expose(), &h(alice, "K")[..]);
    assert_eq!(k_bob.expose(), &h(bob, "K")[..]);

    // ESN-13: C_B = C_A XOR 2^127.
    assert_eq!(counter(bob, "C_A").flip_top_bit(), counter(bob, "C_B"));

    // ESN-16: provisional initiator keys.
    let prov = SessionKeys::derive(SHA256, AES128, &k_alice).unwrap();
    assert_eq!(prov.initiator.cipher.expose(), &h(alice, "KC_A_prov")[..]);
    assert_eq!(prov.initiator.mac.expose(), &h(alice, "KM_A_prov")[..]);
    assert_eq!(prov.initiator.sigma.expose(), &h(alice, "KS_A_prov")[..]);

    // ESN-28: mac_A over N_B | N_A | MPI(e) | "" | form_A | form_A2.
    let mac_a_input = [
        h(alice, "N_B"),
        h(alice, "N_A"),
        h(alice, "e"),
        h(alice, "form_A"),
        h(alice, "form_A2"),
    ]
    .concat();
    assert_eq!(mac_a_input, h(alice, "mac_A_input"));
    let mac_a = SHA256.hmac(prov.initiator.sigma.expose(), &[&mac_a_input]);
    assert_eq!(mac_a, h(alice, "mac_A"));
    let c_a = counter(alice, "C_A");
    let id_a = ctr(&prov.initiator.cipher, c_a, &mac_a);
    assert_eq!(id_a, h(alice, "ID_A"));
    let m_a = SHA256.hmac(prov.initiator.mac.expose(), &[&c_a.to_bytes(), &id_a]);
    assert_eq!(m_a, h(alice, "M_A"));

    // ESN-33: the SAS over M_A | form_B.
    let sas = sas28x5(SHA256, &m_a, &h(bob, "form_B"));
    assert_eq!(sas, vector["active"]["alice"]["sas"].as_str().unwrap());
    assert_eq!(sas, bob["SAS"].as_str().unwrap());

    // ESN-30/35/36/37: retained secret and other shared secret.
    let srs_hex = alice["SRS"].as_str().unwrap();
    let srs = (!srs_hex.is_empty()).then(|| SecretBytes::new(hex::decode(srs_hex).unwrap()));
    if let Some(srs) = &srs {
        let rshash = retained_secret_hash(SHA256, &h(alice, "N_A"), srs);
        let offered: Vec<String> = alice["rshashes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        assert!(
            offered.contains(&hex::encode(&rshash)),
            "rshash of SRS is among the offered values"
        );
        assert_eq!(
            shared_retained_secret_hash(SHA256, srs),
            h(alice, "srshash")
        );
    }
    let oss = oss.map(|pw| SecretBytes::from_slice(pw.as_bytes()));
    let k_final = final_shared_secret(SHA256, &k_alice, srs.as_ref(), oss.as_ref());
    assert_eq!(k_final.expose(), &h(alice, "K_final")[..]);
    assert_eq!(
        new_retained_secret(SHA256, &k_final).expose(),
        &h(alice, "RS_new")[..]
    );
    assert_eq!(
        new_retained_secret(SHA256, &k_final).expose(),
        &h(bob, "RS_new")[..]
    );

    let fin = SessionKeys::derive(SHA256, AES128, &k_final).unwrap();
    for (key, name) in [
        (&fin.initiator.cipher, "KC_A_final"),
        (&fin.initiator.mac, "KM_A_final"),
        (&fin.initiator.sigma, "KS_A_final"),
        (&fin.responder.cipher, "KC_B_final"),
        (&fin.responder.mac, "KM_B_final"),
        (&fin.responder.sigma, "KS_B_final"),
    ] {
        assert_eq!(key.expose(), &h(bob, name)[..], "{name}");
    }

    // ESN-38: mac_B over N_A | N_B | MPI(d) | "" | form_B | form_B2, under final keys.
    let mac_b_input = [
        h(bob, "N_A"),
        h(bob, "N_B"),
        h(bob, "d"),
        h(bob, "form_B"),
        h(bob, "form_B2"),
    ]
    .concat();
    assert_eq!(mac_b_input, h(bob, "mac_B_input"));
    let mac_b = SHA256.hmac(fin.responder.sigma.expose(), &[&mac_b_input]);
    assert_eq!(mac_b, h(bob, "mac_B"));
    let c_b = counter(bob, "C_B");
    let id_b = ctr(&fin.responder.cipher, c_b, &mac_b);
    assert_eq!(id_b, h(bob, "ID_B"));
    assert_eq!(
        SHA256.hmac(fin.responder.mac.expose(), &[&c_b.to_bytes(), &id_b]),
        h(bob, "M_B")
    );

    // ENC-06/09: every encrypted stanza: data decrypts at counter_before, the MAC
    // covers m_content | CTRB(counter_before), and C advances by whole blocks.
    let messages = vector["messages"].as_array().unwrap();
    assert!(!messages.is_empty());
    for m in messages {
        let keys = if m["from"] == "alice" {
            &fin.initiator
        } else {
            &fin.responder
        };
        let before = counter(m, "counter_before");
        let content = m["m_content"].as_str().unwrap();
        let tag = SHA256.hmac(keys.mac.expose(), &[content.as_bytes(), &before.to_bytes()]);
        assert_eq!(tag, h(m, "a_mac"), "stanza {}", m["stanza"]);
        let b64 = content
            .strip_prefix("<data>")
            .unwrap()
            .strip_suffix("</data>")
            .unwrap();
        use base64::Engine as _;
        let data = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        assert_eq!(ctr(&keys.cipher, before, &data), h(m, "m_hex"));
        let blocks = data.len().div_ceil(16) as u128;
        assert_eq!(before.advanced(blocks), counter(m, "counter_after"));
    }
}

#[test]
fn replays_4msg_transcript_without_retained_secret() {
    replay("esession-4msg.json", None);
}

#[test]
fn replays_4msg_transcript_with_retained_secret_and_password() {
    // AMB-58: OSS = UTF-8 of the NFC-normalised password (ASCII here).
    replay(
        "esession-4msg-retained-secret-and-password.json",
        Some("correct horse battery staple"),
    );
}
