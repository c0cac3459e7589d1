#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
//! Benchmarks of the protocol core (issue #3, performance.md targets):
//! * `negotiation/full`: one complete 4-message negotiation in memory, both
//!   parties' CPU (Alice offers groups 5, 14, 2, 1; Bob accepts 14), beside the
//!   OpenSSL floor of the same DH work (`negotiation_dh/openssl` in `crypto`);
//! * `stanza_round_trip/1024`: a minidom `<message/>` with a 1 KiB body ->
//!   encrypted stanza -> decrypted `<message/>`, beside `raw_crypto/1024`: the
//!   same bytes through AES-128-CTR + Base64 + HMAC-SHA-256 both ways.

use std::hint::black_box;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use criterion::{Criterion, criterion_group, criterion_main};
use esession::Event;
use esession_bench::{ALICE, BOB, manager, negotiate};
use esession_crypto::{CipherAlgorithm, Counter, CtrCipher, HashAlgorithm, MacKey, ModpGroup};
use esession_wire::minidom::Element;
use esession_wire::ns;

fn bench_negotiation(c: &mut Criterion) {
    let mut group = c.benchmark_group("negotiation");
    group.sample_size(30);
    let mut alice = manager(
        ALICE,
        vec![
            ModpGroup::Group5,
            ModpGroup::Group14,
            ModpGroup::Group2,
            ModpGroup::Group1,
        ],
        1,
    );
    let mut bob = manager(
        BOB,
        vec![ModpGroup::Group14, ModpGroup::Group2, ModpGroup::Group1],
        2,
    );
    group.bench_function("full", |b| {
        b.iter(|| black_box(negotiate(&mut alice, &mut bob)))
    });
    // Issue 5: the cost of one negotiation in a single group, both parties'
    // CPU, with the strength-sized exponents (group 14: 256 bits, group 18:
    // 408 bits). Target for group 18: <= 25 ms.
    for (name, modp) in [
        ("group14_only", ModpGroup::Group14),
        ("group18_only", ModpGroup::Group18),
    ] {
        let mut alice = manager(ALICE, vec![modp], 3);
        let mut bob = manager(BOB, vec![modp], 4);
        group.bench_function(name, |b| {
            b.iter(|| black_box(negotiate(&mut alice, &mut bob)))
        });
    }
    group.finish();
}

fn bench_stanza(c: &mut Criterion) {
    let mut alice = manager(ALICE, vec![ModpGroup::Group14], 3);
    let mut bob = manager(BOB, vec![ModpGroup::Group14], 4);
    let (alice_id, _) = negotiate(&mut alice, &mut bob);
    let body = "x".repeat(1024);
    let mut plain = Element::bare("message", ns::JABBER_CLIENT);
    esession_wire::xml::set_attr(&mut plain, "type", "chat").unwrap();
    let mut body_el = Element::bare("body", ns::JABBER_CLIENT);
    body_el.append_text_node(body.as_str());
    plain.append_child(body_el);

    let mut group = c.benchmark_group("stanza_round_trip");
    group.bench_function("1024", |b| {
        b.iter(|| {
            let out = alice.send_message(&alice_id, black_box(&plain)).unwrap();
            let received = bob.handle_stanza(&out.stanzas[0]);
            assert!(matches!(
                received.events[..],
                [Event::MessageReceived { .. }]
            ));
            black_box(received)
        })
    });
    group.finish();

    // The raw crypto of the same bytes: encrypt + Base64 + MAC, then verify + decrypt.
    let mut group = c.benchmark_group("raw_crypto");
    let cipher = CtrCipher::new(CipherAlgorithm::Aes128Ctr, &[7u8; 16]).unwrap();
    let mac = MacKey::new(HashAlgorithm::Sha256, &[9u8; 32]);
    let payload = format!("<body>{body}</body>").into_bytes();
    let mut send_counter = Counter::new(5);
    let mut receive_counter = Counter::new(5);
    group.bench_function("1024", |b| {
        b.iter(|| {
            let before = send_counter;
            let mut data = payload.clone();
            cipher.apply(&mut send_counter, &mut data);
            let content = format!("<data>{}</data>", B64.encode(&data));
            let tag = B64.encode(mac.compute(&[content.as_bytes(), &before.to_bytes()]));
            // Receiver side.
            let tag = B64.decode(tag).unwrap();
            assert!(mac.verify(&[content.as_bytes(), &receive_counter.to_bytes()], &tag));
            let mut data = B64.decode(&content[6..content.len() - 7]).unwrap();
            cipher.apply(&mut receive_counter, &mut data);
            black_box(data)
        })
    });
    group.finish();
}

criterion_group!(benches, bench_negotiation, bench_stanza);
criterion_main!(benches);
