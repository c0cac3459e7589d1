//! Issue 15: a contact's public key read from a PEM file written by OpenSSL
//! (`esession trust import`): RSA and DSA, with the same bounds as keys
//! received in a negotiation. Vectors: tests/data/README.md.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use esession_crypto::{KeyComponents, SignatureAlgorithm, VerifyingKey};

const RSA_PEM: &str = include_str!("data/rsa2048.pub.pem");
const RSA_MODULUS_HEX: &str = include_str!("data/rsa2048.modulus.hex");
const DSA_PEM: &str = include_str!("data/dsa2048.pub.pem");

#[test]
fn an_openssl_rsa_public_key_reads_to_its_modulus_and_exponent() {
    let key = VerifyingKey::from_public_key_pem(RSA_PEM).unwrap();
    assert_eq!(key.algorithm(), SignatureAlgorithm::RsaSha256);
    let KeyComponents::Rsa { modulus, exponent } = key.components() else {
        panic!("an RSA key");
    };
    assert_eq!(hex::encode_upper(modulus), RSA_MODULUS_HEX.trim());
    assert_eq!(exponent, &[0x01, 0x00, 0x01]);
}

#[test]
fn an_openssl_dsa_public_key_reads_to_its_parameters() {
    let key = VerifyingKey::from_public_key_pem(DSA_PEM).unwrap();
    assert_eq!(key.algorithm(), SignatureAlgorithm::DsaSha256);
    let KeyComponents::Dsa { p, q, g, y } = key.components() else {
        panic!("a DSA key");
    };
    assert_eq!((p.len(), q.len()), (256, 32), "2048/256 bits");
    assert!(p[0] & 0x80 != 0 && !g.is_empty() && !y.is_empty());
}

#[test]
fn anything_else_is_refused() {
    assert!(VerifyingKey::from_public_key_pem("not a key").is_err());
    // A private key is not a public key.
    let private = include_str!("data/rsa2048.pem");
    assert!(VerifyingKey::from_public_key_pem(private).is_err());
    // A damaged body.
    let damaged = RSA_PEM.replacen('M', "A", 3);
    assert!(VerifyingKey::from_public_key_pem(&damaged).is_err());
}
