//! Checks against the independent implementation's vectors in `vectors/` (copied from
//! `shared/vectors/`): normalized form content (CMN-06, ESN-18/28/38, AMB-15) and the XEP-0200
//! `m_content` of every encrypted stanza (ENC-09, AMB-49).

// Test helpers outside `#[test]` functions: a missing or malformed vector must fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use esession_wire::encrypted::ReceivedEncryptedContent;
use esession_wire::form::DataForm;
use esession_wire::normalize::try_normalize_form_content;
use esession_wire::ns;
use minidom::Element;
use serde_json::Value;

const VECTOR_FILES: [&str; 2] = [
    "esession-4msg.json",
    "esession-4msg-retained-secret-and-password.json",
];

fn load(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../vectors")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn stanza(v: &Value, n: u64) -> Element {
    let s = v["stanzas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["n"].as_u64() == Some(n))
        .unwrap_or_else(|| panic!("stanza {n}"));
    s["xml"].as_str().unwrap().parse().unwrap()
}

/// The `<x/>` inside the stanza's `<feature/>` (messages 1-3) or `<init/>` (message 4).
fn form_of(message: &Element) -> &Element {
    let wrapper = message
        .get_child("feature", ns::FEATURE_NEG)
        .or_else(|| message.get_child("init", ns::ESESSION_INIT))
        .expect("feature-neg or init wrapper");
    wrapper.get_child("x", ns::DATA_FORMS).expect("data form")
}

fn hex_field(v: &Value, party: &str, name: &str) -> Vec<u8> {
    hex::decode(v["derived"][party][name].as_str().unwrap()).unwrap()
}

#[test]
fn form_content_matches_the_vectors_cmn_06_esn_18_esn_28_esn_38() {
    for file in VECTOR_FILES {
        let v = load(file);
        let cases = [
            (1, "form_A", &[][..]),
            (2, "form_B", &[][..]),
            (3, "form_A2", &["identity", "mac"][..]),
            (4, "form_B2", &["identity", "mac"][..]),
        ];
        for (n, name, without) in cases {
            let x = form_of(&stanza(&v, n)).clone();
            let ours = try_normalize_form_content(&x, without).unwrap();
            for party in ["alice", "bob"] {
                assert_eq!(
                    String::from_utf8_lossy(&ours),
                    String::from_utf8_lossy(&hex_field(&v, party, name)),
                    "{file}: {name} ({party})"
                );
            }
        }
    }
}

#[test]
fn every_vector_form_parses_strictly() {
    for file in VECTOR_FILES {
        let v = load(file);
        for n in 1..=4 {
            let form = DataForm::try_from(form_of(&stanza(&v, n)))
                .unwrap_or_else(|e| panic!("{file} stanza {n}: {e}"));
            assert_eq!(form.form_type_value(), Some(ns::SSN), "{file} stanza {n}");
        }
    }
}

#[test]
fn reserializing_the_vector_forms_reproduces_their_bytes() {
    for file in VECTOR_FILES {
        let v = load(file);
        for n in 1..=4 {
            let received = form_of(&stanza(&v, n)).clone();
            let typed = DataForm::try_from(&received).unwrap();
            let ours = Element::from(&typed);
            assert_eq!(
                String::from(&ours),
                String::from(&received),
                "{file} stanza {n}"
            );
            // Against the reference's own bytes: identical but for minidom's single quotes.
            let reference = v["stanzas"][n as usize - 1]["xml"].as_str().unwrap();
            let ours_double_quoted = String::from(&ours).replace('\'', "\"");
            assert!(reference.contains(&ours_double_quoted), "{file} stanza {n}");
        }
    }
}

#[test]
fn m_content_matches_the_vectors_for_every_encrypted_stanza_enc_09_amb_49() {
    for file in VECTOR_FILES {
        let v = load(file);
        let messages = v["messages"].as_array().unwrap();
        assert!(!messages.is_empty());
        for m in messages {
            let n = m["stanza"].as_u64().unwrap();
            let message = stanza(&v, n);
            let c = message
                .get_child("c", ns::STANZA_ENCRYPTION)
                .expect("<c/> in encrypted stanza");
            let received = ReceivedEncryptedContent::try_from(c).unwrap();
            assert_eq!(
                std::str::from_utf8(received.m_content()).unwrap(),
                m["m_content"].as_str().unwrap(),
                "{file} stanza {n}"
            );
            // Our own serialization of the same content yields the same m_content and bytes.
            let content = received.content();
            assert_eq!(
                content.m_content(),
                received.m_content(),
                "{file} stanza {n}"
            );
            let ours = String::from(&Element::from(content)).replace('\'', "\"");
            let reference = v["stanzas"][n as usize - 1]["xml"].as_str().unwrap();
            assert!(reference.contains(&ours), "{file} stanza {n}");
            // The MAC in the stanza is the vector's a_mac.
            assert_eq!(
                content.mac,
                hex::decode(m["a_mac"].as_str().unwrap()).unwrap(),
                "{file} stanza {n}"
            );
        }
    }
}
