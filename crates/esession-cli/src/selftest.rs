//! The crypto-suite self-test shown by `esession demo` until the protocol core lands.

use esession_crypto::Hashing;
use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use esession_crypto::dh::negotiation_secret;
use esession_crypto::kdf::SessionKeys;
use esession_crypto::{
    CipherAlgorithm, Counter, CtrCipher, DhKeyPair, ExponentSize, HashAlgorithm, MacKey, ModpGroup,
    SigningKey, ct_eq, sas28x5,
};

fn check(name: &str, ok: bool) -> Result<(), String> {
    println!("  [{}] {name}", if ok { " ok " } else { "FAIL" });
    if ok { Ok(()) } else { Err(name.to_owned()) }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .filter_map(|i| s.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect()
}

pub(crate) fn run() -> Result<(), String> {
    println!("esession selftest — crypto suite\n");
    let mut rng = crate::rng::os_seeded()?;

    println!("Published known answers:");
    let aes = CtrCipher::new(
        CipherAlgorithm::Aes128Ctr,
        &hex("2b7e151628aed2a6abf7158809cf4f3c"),
    )
    .map_err(|e| e.to_string())?;
    let mut counter =
        Counter::from_wire(&hex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")).map_err(|e| e.to_string())?;
    let mut block = hex("6bc1bee22e409f96e93d7e117393172a");
    aes.apply(&mut counter, &mut block);
    check(
        "AES-128-CTR, NIST SP 800-38A F.5.1 block 1",
        block == hex("874d6191b620e3261bef6864990db6ce"),
    )?;
    let tag = HashAlgorithm::Sha256.hmac(&[0x0b; 20], &[b"Hi There"]);
    check(
        "HMAC-SHA-256, RFC 4231 case 1",
        tag == hex("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    )?;
    let wp = HashAlgorithm::Whirlpool.digest(&[b"abc"]);
    check(
        "Whirlpool(\"abc\"), ISO/IEC 10118-3",
        wp.starts_with(&hex("4e2448a4c6f486bb16b6562c73b4020b")),
    )?;

    println!("\nDiffie-Hellman, MODP group 14 (2048-bit), 256-bit exponents:");
    let started = Instant::now();
    let alice = DhKeyPair::generate(ModpGroup::Group14, ExponentSize::Recommended, &mut rng);
    let bob = DhKeyPair::generate(ModpGroup::Group14, ExponentSize::Recommended, &mut rng);
    let (e, d) = (alice.public().clone(), bob.public().clone());
    let k_a = negotiation_secret(
        HashAlgorithm::Sha256,
        &alice.agree(&d).map_err(|e| e.to_string())?,
    );
    let k_b = negotiation_secret(
        HashAlgorithm::Sha256,
        &bob.agree(&e).map_err(|e| e.to_string())?,
    );
    check(
        "both sides derive the same K = SHA256(MPI(g^xy mod p))",
        ct_eq(k_a.expose(), k_b.expose()),
    )?;
    println!(
        "  4 modular exponentiations in {:.2} ms",
        started.elapsed().as_secs_f64() * 1e3
    );

    let keys_a = SessionKeys::derive(HashAlgorithm::Sha256, CipherAlgorithm::Aes128Ctr, &k_a)
        .map_err(|e| e.to_string())?;
    let keys_b = SessionKeys::derive(HashAlgorithm::Sha256, CipherAlgorithm::Aes128Ctr, &k_b)
        .map_err(|e| e.to_string())?;
    let sas_a = sas28x5(
        HashAlgorithm::Sha256,
        keys_a.initiator.mac.expose(),
        b"form_B",
    );
    let sas_b = sas28x5(
        HashAlgorithm::Sha256,
        keys_b.initiator.mac.expose(),
        b"form_B",
    );
    println!("  short authentication strings: Alice {sas_a}, Bob {sas_b}");
    check("SAS strings equal", sas_a == sas_b)?;

    println!("\nOne XEP-0200 stanza, Alice -> Bob:");
    let plaintext = b"<body>Hello Bob, this is Alice.</body>";
    let cipher_a = CtrCipher::new(CipherAlgorithm::Aes128Ctr, keys_a.initiator.cipher.expose())
        .map_err(|e| e.to_string())?;
    let mac_a = MacKey::new(HashAlgorithm::Sha256, keys_a.initiator.mac.expose());
    let start = Counter::new(0x0123_4567_89ab_cdef);
    let mut c = start;
    let mut data = plaintext.to_vec();
    cipher_a.apply(&mut c, &mut data);
    let content = format!("<data>{}</data>", B64.encode(&data));
    let mac = mac_a.compute(&[content.as_bytes(), &start.to_bytes()]);
    println!("  <c>{content}<mac>{}</mac></c>", B64.encode(&mac));
    let mac_b = MacKey::new(HashAlgorithm::Sha256, keys_b.initiator.mac.expose());
    check(
        "Bob verifies the MAC before decrypting",
        mac_b.verify(&[content.as_bytes(), &start.to_bytes()], &mac),
    )?;
    let cipher_b = CtrCipher::new(CipherAlgorithm::Aes128Ctr, keys_b.initiator.cipher.expose())
        .map_err(|e| e.to_string())?;
    let mut c_b = start;
    cipher_b.apply(&mut c_b, &mut data);
    check("Bob decrypts Alice's text", data == plaintext && c_b == c)?;
    let mut forged = content.into_bytes();
    forged[8] ^= 1;
    check(
        "a flipped bit fails the MAC",
        !mac_b.verify(&[&forged, &start.to_bytes()], &mac),
    )?;

    println!("\nIdentity signatures (over the identity MAC):");
    let rsa = SigningKey::generate_rsa(2048).map_err(|e| e.to_string())?;
    let signature = rsa.sign(&mac).map_err(|e| e.to_string())?;
    check(
        "RSA-2048 PKCS#1 v1.5 SHA-256 sign + verify",
        rsa.verifying_key().verify(&mac, &signature).is_ok(),
    )?;

    println!("\nAll self-test checks passed.");
    Ok(())
}
