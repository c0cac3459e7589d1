#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]
//! TV-01: the embedded MODP primes equal `vectors/modp-groups.json` AND the π
//! formula p = 2^N - 2^(N-64) - 1 + 2^64 * (floor(2^(N-130) * π) + k), with π
//! computed here from Machin's formula in big-integer fixed point.

use esession_crypto::{GroupPrime, Hashing};
use esession_crypto::{HashAlgorithm, ModpGroup};
use num_bigint::{BigInt, Sign};
use serde_json::Value;

fn groups() -> Vec<Value> {
    let path = format!(
        "{}/../../vectors/modp-groups.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let json: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    json["groups"].as_array().unwrap().clone()
}

/// arctan(1/x) * 2^precision, truncated.
fn arctan_inverse(x: u32, precision: u64) -> BigInt {
    let x = BigInt::from(x);
    let x_squared = &x * &x;
    let mut power = (BigInt::from(1) << precision) / &x; // 2^P / x^(2k+1)
    let mut sum = power.clone();
    let mut k: u32 = 1;
    loop {
        power /= &x_squared;
        if power == BigInt::ZERO {
            return sum;
        }
        let term = &power / BigInt::from(2 * k + 1);
        if k % 2 == 1 {
            sum -= term;
        } else {
            sum += term;
        }
        k += 1;
    }
}

/// π * 2^precision, with 64 guard bits absorbed.
fn pi_fixed(precision: u64) -> BigInt {
    let guard = 64;
    let p = precision + guard;
    let pi = BigInt::from(16) * arctan_inverse(5, p) - BigInt::from(4) * arctan_inverse(239, p);
    pi >> guard
}

#[test]
fn embedded_primes_equal_the_vector_file_and_the_pi_formula() {
    let pi = pi_fixed(8192);
    let mut seen = 0;
    for g in groups() {
        let id = g["group"].as_u64().unwrap() as u32;
        let bits = g["bits"].as_u64().unwrap();
        let k = g["k"].as_u64().unwrap();
        let group = ModpGroup::from_id(id).unwrap();
        assert_eq!(u64::from(group.bits()), bits);
        assert_eq!(g["generator"].as_u64().unwrap(), 2);

        let embedded = group.prime_bytes();
        let from_file = hex::decode(g["prime_hex"].as_str().unwrap()).unwrap();
        assert_eq!(
            embedded, from_file,
            "group {id} differs from modp-groups.json"
        );

        let floor_pi = &pi >> (8192 - (bits - 130)); // floor(2^(N-130) * π)
        let one = BigInt::from(1);
        let p =
            (&one << bits) - (&one << (bits - 64)) - &one + ((floor_pi + BigInt::from(k)) << 64);
        assert_eq!(
            p,
            BigInt::from_bytes_be(Sign::Plus, &embedded),
            "group {id} differs from π formula"
        );
        seen += 1;
    }
    assert_eq!(seen, 8);
}

#[test]
fn prime_hashes_match_the_published_prefixes() {
    // TV-01 lists SHA-256 prefixes of each p as full-width big-endian bytes.
    let expected = [
        (1, "b52ba6a3026520a6"),
        (2, "3f35a3f5f6c4376a"),
        (5, "64fcc83ec403930b"),
        (14, "d66436f79bbd6b2e"),
        (15, "48cf8b092fbce435"),
        (16, "4ee95187682bcb23"),
        (17, "d1bfe6d0925ce7e4"),
        (18, "39ab4feab950a312"),
    ];
    for (id, prefix) in expected {
        let p = ModpGroup::from_id(id).unwrap().prime_bytes();
        let digest = HashAlgorithm::Sha256.digest(&[&p]);
        assert_eq!(hex::encode(&digest[..8]), prefix, "group {id}");
    }
}

/// g^x mod p with num-bigint: an independent (variable-time) implementation.
fn reference_modpow(group: ModpGroup, base: &BigInt, exponent: &[u8]) -> Vec<u8> {
    let p = BigInt::from_bytes_be(Sign::Plus, &group.prime_bytes());
    base.modpow(&BigInt::from_bytes_be(Sign::Plus, exponent), &p)
        .to_bytes_be()
        .1
}

fn exponent_from_counter(i: u32) -> Vec<u8> {
    // 2^255 + 1 + i: the smallest exponents ESN-06 allows.
    let mut x = vec![0u8; 32];
    x[0] = 0x80;
    x[28..].copy_from_slice(&(i + 1).to_be_bytes());
    x
}

#[test]
fn public_values_and_shared_secrets_match_an_independent_modpow() {
    use esession_crypto::DhKeyPair;
    for group in [ModpGroup::Group1, ModpGroup::Group14, ModpGroup::Group18] {
        let x = exponent_from_counter(7);
        let y = exponent_from_counter(1_000_003);
        let a = DhKeyPair::from_private_exponent(group, &x).unwrap();
        let b = DhKeyPair::from_private_exponent(group, &y).unwrap();
        let e = reference_modpow(group, &BigInt::from(2), &x);
        assert_eq!(a.public().to_mpi(), &e[..]);
        let shared = reference_modpow(group, &BigInt::from_bytes_be(Sign::Plus, &e), &y);
        let peer = b.public().clone();
        assert_eq!(a.agree(&peer).unwrap().expose(), &shared[..]);
    }
}

#[test]
fn leading_zero_octets_are_stripped_from_e_and_from_the_shared_value() {
    // AMB-14 / CMN-01: crafted cases (1 in 256 for random values) where e and
    // g^xy have a zero top octet; He and K must hash the shortened MPI bytes.
    use esession_crypto::dh::negotiation_secret;
    use esession_crypto::{DhKeyPair, DhPublicValue};
    let group = ModpGroup::Group1;
    let full_len = group.byte_len();
    let mut found_e = false;
    let mut found_k = false;
    for i in 0..4000u32 {
        let x = exponent_from_counter(i);
        let pair = DhKeyPair::from_private_exponent(group, &x).unwrap();
        let e = pair.public().to_mpi().to_vec();
        if !found_e && e.len() < full_len {
            let mut padded = vec![0u8; full_len - e.len()];
            padded.extend_from_slice(&e);
            assert_eq!(
                pair.public().commitment(),
                HashAlgorithm::Sha256.digest(&[&e])
            );
            assert_ne!(
                pair.public().commitment(),
                HashAlgorithm::Sha256.digest(&[&padded])
            );
            // The same value received with its leading zero is the same MPI.
            assert_eq!(
                DhPublicValue::from_bytes(group, &padded).unwrap().to_mpi(),
                &e[..]
            );
            found_e = true;
        }
        let peer = DhPublicValue::from_bytes(
            group,
            &reference_modpow(group, &BigInt::from(2), &exponent_from_counter(99_999)),
        )
        .unwrap();
        let raw = pair.agree(&peer).unwrap();
        if !found_k && raw.len() < full_len {
            assert_ne!(raw.expose()[0], 0);
            let k = negotiation_secret(HashAlgorithm::Sha256, &raw);
            assert_eq!(
                k.expose(),
                &HashAlgorithm::Sha256.digest(&[raw.expose()])[..]
            );
            found_k = true;
        }
        if found_e && found_k {
            return;
        }
    }
    panic!("no leading-zero case found (e: {found_e}, K: {found_k})");
}
