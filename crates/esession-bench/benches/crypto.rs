#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
//! Criterion benchmarks of the crypto suite (issue #2, performance.md).
//!
//! `cargo bench -p esession-bench --features bench-openssl` measures each
//! operation beside its OpenSSL floor in the same run:
//! * `modexp/<group>/<ours|openssl>/<recommended|full>`: one g^x mod p;
//! * `negotiation_dh`: the model negotiation's DH work (Alice offers groups
//!   5, 14, 2, 1 and computes e for each; Bob picks 14; both agree);
//! * `stanza/<size>`: AES-128-CTR + Base64 + HMAC-SHA-256 over `<data>…</data>`
//!   and the counter + Base64 of the MAC, keys and HMAC state kept per session;
//! * `signature/<rsa|dsa>/<sign|verify>`.

use std::hint::black_box;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use esession_crypto::{
    CipherAlgorithm, Counter, CtrCipher, DhKeyPair, ExponentSize, HashAlgorithm, MacKey, ModpGroup,
    SigningKey,
};

/// The deterministic, non-cryptographic bench generator: repeatable inputs only.
use esession_bench::Rng as BenchRng;

const GROUPS: [ModpGroup; 8] = [
    ModpGroup::Group1,
    ModpGroup::Group2,
    ModpGroup::Group5,
    ModpGroup::Group14,
    ModpGroup::Group15,
    ModpGroup::Group16,
    ModpGroup::Group17,
    ModpGroup::Group18,
];

fn bench_modexp(c: &mut Criterion) {
    let mut rng = BenchRng(0x9e37_79b9_7f4a_7c15);
    let mut group_bench = c.benchmark_group("modexp");
    group_bench.sample_size(10);
    for group in GROUPS {
        for (size, label) in [
            (ExponentSize::Recommended, "recommended"),
            (ExponentSize::Full, "full"),
        ] {
            let ours = DhKeyPair::generate(group, size, &mut rng);
            let peer = DhKeyPair::generate(group, ExponentSize::Recommended, &mut rng)
                .public()
                .clone();
            group_bench.bench_function(
                BenchmarkId::new(format!("{}/ours", group.id()), label),
                |b| b.iter(|| black_box(ours.agree_keeping(black_box(&peer)))),
            );
            #[cfg(feature = "bench-openssl")]
            {
                let bits = match size {
                    ExponentSize::Recommended => group.exponent_bits(),
                    ExponentSize::Full => group.bits(),
                };
                let floor = openssl_floor::ModExp::new(group, bits, &mut rng);
                group_bench.bench_function(
                    BenchmarkId::new(format!("{}/openssl", group.id()), label),
                    |b| b.iter(|| black_box(floor.run())),
                );
            }
        }
    }
    group_bench.finish();
}

fn bench_negotiation_dh(c: &mut Criterion) {
    let mut rng = BenchRng(42);
    let mut group_bench = c.benchmark_group("negotiation_dh");
    group_bench.sample_size(20);
    let offered = [
        ModpGroup::Group5,
        ModpGroup::Group14,
        ModpGroup::Group2,
        ModpGroup::Group1,
    ];
    group_bench.bench_function("ours", |b| {
        b.iter(|| {
            let mut alice: Vec<DhKeyPair> = offered
                .iter()
                .map(|&g| DhKeyPair::generate(g, ExponentSize::Recommended, &mut rng))
                .collect();
            let bob = DhKeyPair::generate(ModpGroup::Group14, ExponentSize::Recommended, &mut rng);
            let alice_pair = alice.swap_remove(1);
            let e = alice_pair.public().clone();
            let d = bob.public().clone();
            let k_bob = bob.agree(&e);
            let k_alice = alice_pair.agree(&d);
            black_box((k_alice, k_bob))
        })
    });
    #[cfg(feature = "bench-openssl")]
    group_bench.bench_function("openssl", |b| {
        let model = openssl_floor::Negotiation::new(&offered);
        b.iter(|| black_box(model.run()))
    });
    group_bench.finish();
}

/// One stanza's symmetric work, as XEP-0200 does it (ENC-06/07/09).
fn seal_stanza(
    cipher: &CtrCipher,
    mac: &MacKey,
    counter: &mut Counter,
    payload: &[u8],
) -> (String, String) {
    let before = *counter;
    let mut data = payload.to_vec();
    cipher.apply(counter, &mut data);
    let content = format!("<data>{}</data>", B64.encode(&data));
    let tag = mac.compute(&[content.as_bytes(), &before.to_bytes()]);
    (content, B64.encode(tag))
}

fn bench_stanza(c: &mut Criterion) {
    let cipher = CtrCipher::new(CipherAlgorithm::Aes128Ctr, &[7u8; 16]).ok();
    let mac = MacKey::new(HashAlgorithm::Sha256, &[9u8; 32]);
    let Some(cipher) = cipher else { return };
    let mut group_bench = c.benchmark_group("stanza");
    for size in [200usize, 1024, 16 * 1024] {
        let payload = vec![b'x'; size];
        group_bench.throughput(Throughput::Bytes(size as u64));
        let mut counter = Counter::new(1);
        group_bench.bench_function(BenchmarkId::new("ours", size), |b| {
            b.iter(|| {
                black_box(seal_stanza(
                    &cipher,
                    &mac,
                    &mut counter,
                    black_box(&payload),
                ))
            })
        });
        #[cfg(feature = "bench-openssl")]
        {
            let mut floor = openssl_floor::Stanza::new(&[7u8; 16], &[9u8; 32]);
            group_bench.bench_function(BenchmarkId::new("openssl", size), |b| {
                b.iter(|| black_box(floor.seal(black_box(&payload))))
            });
        }
    }
    group_bench.finish();
}

fn fixture(name: &str) -> serde_json::Value {
    let path = format!(
        "{}/../esession-crypto/tests/data/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(path).unwrap_or_default();
    serde_json::from_str(&text).unwrap_or_default()
}

fn hex_field(v: &serde_json::Value, key: &str) -> Vec<u8> {
    hex::decode(v[key].as_str().unwrap_or_default()).unwrap_or_default()
}

fn bench_signatures(c: &mut Criterion) {
    let mut group_bench = c.benchmark_group("signature");
    group_bench.sample_size(20);
    let message = [0x5au8; 32];
    let rsa = &fixture("rsa_sha256.json")["vectors"][0];
    if let Ok(key) = SigningKey::rsa_from_pkcs8(&hex_field(rsa, "private_key_pkcs8_der")) {
        let sig = key.sign(&message).unwrap_or_default();
        group_bench.bench_function("rsa2048/ours/sign", |b| {
            b.iter(|| black_box(key.sign(&message)))
        });
        group_bench.bench_function("rsa2048/ours/verify", |b| {
            b.iter(|| black_box(key.verifying_key().verify(&message, &sig)))
        });
    }
    let dsa = &fixture("dsa_sha256.json")["vectors"][0];
    let dsa_key = SigningKey::dsa_from_components(
        &hex_field(dsa, "p"),
        &hex_field(dsa, "q"),
        &hex_field(dsa, "g"),
        &hex_field(dsa, "y"),
        &hex_field(dsa, "x"),
    );
    if let Ok(key) = dsa_key {
        let sig = key.sign(&message).unwrap_or_default();
        group_bench.bench_function("dsa2048/ours/sign", |b| {
            b.iter(|| black_box(key.sign(&message)))
        });
        group_bench.bench_function("dsa2048/ours/verify", |b| {
            b.iter(|| black_box(key.verifying_key().verify(&message, &sig)))
        });
    }
    #[cfg(feature = "bench-openssl")]
    {
        let dir = format!(
            "{}/../esession-crypto/tests/data",
            env!("CARGO_MANIFEST_DIR")
        );
        for (name, file) in [("rsa2048", "rsa2048.pem"), ("dsa2048", "dsa2048.pem")] {
            let Some(floor) = openssl_floor::Signature::load(&format!("{dir}/{file}")) else {
                continue;
            };
            let sig = floor.sign(&message);
            group_bench.bench_function(format!("{name}/openssl/sign"), |b| {
                b.iter(|| black_box(floor.sign(&message)))
            });
            group_bench.bench_function(format!("{name}/openssl/verify"), |b| {
                b.iter(|| black_box(floor.verify(&message, &sig)))
            });
        }
    }
    group_bench.finish();
}

#[cfg(feature = "bench-openssl")]
mod openssl_floor {
    //! The OpenSSL floor: constant-time BN_mod_exp (BN_FLG_CONSTTIME selects
    //! BN_mod_exp_mont_consttime), EVP AES-128-CTR with a reused context, and HMAC
    //! from precomputed inner/outer SHA-256 states (the `openssl` crate's HMAC
    //! object costs ~4.5 µs of setup per message, performance.md).

    use super::*;
    use esession_crypto::GroupPrime;
    use openssl::bn::{BigNum, BigNumContext};
    use openssl::cipher::Cipher;
    use openssl::cipher_ctx::CipherCtx;
    use openssl::hash::MessageDigest;
    use openssl::pkey::{PKey, Private};
    use openssl::sha::Sha256;

    pub(super) struct ModExp {
        base: BigNum,
        exponent: BigNum,
        modulus: BigNum,
    }

    fn random_exponent(bits: u32, rng: &mut BenchRng) -> BigNum {
        use esession_crypto::rand_core::Rng as _;
        let mut bytes = vec![0u8; (bits / 8) as usize];
        rng.fill_bytes(&mut bytes);
        bytes[0] |= 0x80;
        let mut x = BigNum::from_slice(&bytes).unwrap();
        x.set_const_time();
        x
    }

    impl ModExp {
        pub(super) fn new(group: ModpGroup, exponent_bits: u32, rng: &mut BenchRng) -> Self {
            let modulus = BigNum::from_slice(&group.prime_bytes()).unwrap();
            let mut base = BigNum::from_u32(2).unwrap();
            let ctx = &mut BigNumContext::new().unwrap();
            let x = random_exponent(group.exponent_bits(), rng);
            let mut peer = BigNum::new().unwrap();
            peer.mod_exp(&base, &x, &modulus, ctx).unwrap();
            base = peer;
            let mut exponent = random_exponent(exponent_bits, rng);
            if exponent_bits >= group.bits() {
                // Full size: keep it below p - 1.
                exponent.clear_bit(group.bits() as i32 - 1).unwrap();
                exponent.set_const_time();
            }
            Self {
                base,
                exponent,
                modulus,
            }
        }

        pub(super) fn run(&self) -> BigNum {
            let mut out = BigNum::new().unwrap();
            let ctx = &mut BigNumContext::new().unwrap();
            out.mod_exp(&self.base, &self.exponent, &self.modulus, ctx)
                .unwrap();
            out
        }
    }

    pub(super) struct Negotiation {
        groups: Vec<(ModpGroup, BigNum)>,
    }

    impl Negotiation {
        pub(super) fn new(offered: &[ModpGroup]) -> Self {
            let groups = offered
                .iter()
                .map(|&g| (g, BigNum::from_slice(&g.prime_bytes()).unwrap()))
                .collect();
            Self { groups }
        }

        pub(super) fn run(&self) -> (BigNum, BigNum) {
            let mut rng = BenchRng(7);
            let ctx = &mut BigNumContext::new().unwrap();
            let two = BigNum::from_u32(2).unwrap();
            let mut publics = Vec::new();
            let mut exponents = Vec::new();
            for (group, p) in &self.groups {
                let x = random_exponent(group.exponent_bits(), &mut rng);
                let mut e = BigNum::new().unwrap();
                e.mod_exp(&two, &x, p, ctx).unwrap();
                publics.push(e);
                exponents.push(x);
            }
            let p14 = &self.groups[1].1;
            let y = random_exponent(ModpGroup::Group14.exponent_bits(), &mut rng);
            let mut d = BigNum::new().unwrap();
            d.mod_exp(&two, &y, p14, ctx).unwrap();
            let mut k_bob = BigNum::new().unwrap();
            k_bob.mod_exp(&publics[1], &y, p14, ctx).unwrap();
            let mut k_alice = BigNum::new().unwrap();
            k_alice.mod_exp(&d, &exponents[1], p14, ctx).unwrap();
            (k_alice, k_bob)
        }
    }

    pub(super) struct Stanza {
        ctx: CipherCtx,
        inner: Sha256,
        outer: Sha256,
        counter: u128,
    }

    impl Stanza {
        pub(super) fn new(key: &[u8; 16], mac_key: &[u8; 32]) -> Self {
            let mut ctx = CipherCtx::new().unwrap();
            ctx.encrypt_init(Some(Cipher::aes_128_ctr()), Some(key), Some(&[0u8; 16]))
                .unwrap();
            let (mut ipad, mut opad) = ([0x36u8; 64], [0x5cu8; 64]);
            for (i, k) in mac_key.iter().enumerate() {
                ipad[i] ^= k;
                opad[i] ^= k;
            }
            let mut inner = Sha256::new();
            inner.update(&ipad);
            let mut outer = Sha256::new();
            outer.update(&opad);
            Self {
                ctx,
                inner,
                outer,
                counter: 1,
            }
        }

        pub(super) fn seal(&mut self, payload: &[u8]) -> (String, String) {
            let before = self.counter;
            self.ctx
                .encrypt_init(None, None, Some(&before.to_be_bytes()))
                .unwrap();
            let mut data = vec![0u8; payload.len() + 16];
            let n = self.ctx.cipher_update(payload, Some(&mut data)).unwrap();
            data.truncate(n);
            self.counter = before.wrapping_add(payload.len().div_ceil(16) as u128);
            let content = format!("<data>{}</data>", openssl::base64::encode_block(&data));
            let mut inner = self.inner.clone();
            inner.update(content.as_bytes());
            inner.update(&before.to_be_bytes());
            let mut outer = self.outer.clone();
            outer.update(&inner.finish());
            (content, openssl::base64::encode_block(&outer.finish()))
        }
    }

    pub(super) struct Signature {
        key: PKey<Private>,
    }

    impl Signature {
        pub(super) fn load(path: &str) -> Option<Self> {
            let pem = std::fs::read(path).ok()?;
            Some(Self {
                key: PKey::private_key_from_pem(&pem).ok()?,
            })
        }

        pub(super) fn sign(&self, message: &[u8]) -> Vec<u8> {
            let mut signer =
                openssl::sign::Signer::new(MessageDigest::sha256(), &self.key).unwrap();
            signer.sign_oneshot_to_vec(message).unwrap()
        }

        pub(super) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
            let mut verifier =
                openssl::sign::Verifier::new(MessageDigest::sha256(), &self.key).unwrap();
            verifier.verify_oneshot(signature, message).unwrap_or(false)
        }
    }
}

criterion_group!(
    benches,
    bench_modexp,
    bench_negotiation_dh,
    bench_stanza,
    bench_signatures
);
criterion_main!(benches);
