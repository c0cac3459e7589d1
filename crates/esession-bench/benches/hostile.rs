#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
//! Issue 11: what one hostile stanza costs us.
//! * `unsolicited/offer_*`: a stranger's offer (all eight groups, group 18
//!   listed first) reaching a responder with the default `Config`; `ours`
//!   (the default, `ResponderChoice::Ours`: group 14) beside `peers` (the
//!   peer's order: group 18), the comparison in the same run;
//! * `unsolicited/garbage_form`: 16 KiB of a form that is no offer;
//! * `established/max_elements`: an authenticated peer's stanza at the
//!   default element limit (4,096 elements) and near the 1 MiB plaintext
//!   limit, its two halves (`big_body`: 800 KiB of text; `many_elements`:
//!   4,096 empty elements), beside `established/ordinary` (a 1 KiB body).

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use esession::{Config, Event, ResponderChoice};
use esession_bench::{ALICE, BOB, manager, manager_with, negotiate};
use esession_crypto::ModpGroup;
use esession_wire::minidom::{Element, Node};
use esession_wire::ns;

/// The offer with its `<thread/>` text replaced (a new negotiation each time).
fn with_thread(offer: &Element, thread: u64) -> Element {
    let mut stanza = offer.clone();
    for child in stanza.children_mut() {
        if child.is("thread", ns::JABBER_CLIENT) {
            let _ = child.take_nodes();
            child.append_node(Node::Text(format!("hostile-{thread:016x}")));
        }
    }
    stanza
}

fn bench_unsolicited(c: &mut Criterion) {
    let mut group = c.benchmark_group("unsolicited");
    group.sample_size(30);
    // A stranger lists the most expensive group first.
    let mut groups = ModpGroup::ALL.to_vec();
    groups.sort_by_key(|g| std::cmp::Reverse(g.bits()));
    let mut stranger = manager(ALICE, groups, 11);
    let (_, offer) = stranger.start_session(BOB).unwrap();
    let mut offer = offer.stanzas[0].clone();
    esession_wire::xml::set_attr(&mut offer, "from", ALICE).unwrap();
    for (name, choice) in [
        ("offer_ours", ResponderChoice::Ours),
        ("offer_peers", ResponderChoice::Peers),
    ] {
        let mut bob = manager_with(
            BOB,
            Config {
                responder_choice: choice,
                // Measure the answer itself (the expensive-group budget
                // would refuse `peers` after two).
                limits: esession_bench::unlimited(),
                ..Config::default()
            },
            12,
        );
        let mut n = 0u64;
        group.bench_function(name, |b| {
            b.iter_batched(
                || {
                    n += 1;
                    with_thread(&offer, n)
                },
                |stanza| {
                    let out = bob.handle_stanza(&stanza);
                    assert_eq!(out.stanzas.len(), 1, "answered");
                    black_box(out)
                },
                BatchSize::SmallInput,
            )
        });
    }
    let mut garbage = Element::bare("message", ns::JABBER_CLIENT);
    esession_wire::xml::set_attr(&mut garbage, "from", ALICE).unwrap();
    let mut thread = Element::bare("thread", ns::JABBER_CLIENT);
    thread.append_text_node("garbage");
    garbage.append_child(thread);
    let mut feature = Element::bare("feature", ns::FEATURE_NEG);
    let mut form = Element::bare("x", "jabber:x:data");
    esession_wire::xml::set_attr(&mut form, "type", "form").unwrap();
    for i in 0..256 {
        let mut field = Element::bare("field", "jabber:x:data");
        esession_wire::xml::set_attr(&mut field, "var", format!("junk{i}")).unwrap();
        let mut value = Element::bare("value", "jabber:x:data");
        value.append_text_node("x".repeat(48));
        field.append_child(value);
        form.append_child(field);
    }
    feature.append_child(form);
    garbage.append_child(feature);
    let mut bob = manager_with(BOB, Config::default(), 13);
    let mut n = 0u64;
    group.bench_function("garbage_form", |b| {
        b.iter_batched(
            || {
                n += 1;
                with_thread(&garbage, n)
            },
            |stanza| black_box(bob.handle_stanza(&stanza)),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn bench_established(c: &mut Criterion) {
    let mut group = c.benchmark_group("established");
    group.sample_size(20);
    let mut alice = manager(ALICE, vec![ModpGroup::Group14], 21);
    let mut bob = manager(BOB, vec![ModpGroup::Group14], 22);
    let (alice_id, _) = negotiate(&mut alice, &mut bob);
    let mut ordinary = Element::bare("message", ns::JABBER_CLIENT);
    let mut body = Element::bare("body", ns::JABBER_CLIENT);
    body.append_text_node("x".repeat(1024));
    ordinary.append_child(body);
    // 4,096 elements (the body and 4,095 more), about 0.9 MiB in all (under
    // the 1 MiB plaintext limit).
    let mut heavy = Element::bare("message", ns::JABBER_CLIENT);
    let mut body = Element::bare("body", ns::JABBER_CLIENT);
    body.append_text_node("y".repeat(800 * 1024));
    heavy.append_child(body);
    for _ in 0..4095 {
        let mut item = Element::bare("i", "urn:example:hostile");
        esession_wire::xml::set_attr(&mut item, "a", "0123456789abcdef").unwrap();
        heavy.append_child(item);
    }
    let mut big_body = Element::bare("message", ns::JABBER_CLIENT);
    let mut body = Element::bare("body", ns::JABBER_CLIENT);
    body.append_text_node("y".repeat(800 * 1024));
    big_body.append_child(body);
    let mut many = Element::bare("message", ns::JABBER_CLIENT);
    for _ in 0..4096 {
        let mut item = Element::bare("i", "urn:example:hostile");
        esession_wire::xml::set_attr(&mut item, "a", "0123456789abcdef").unwrap();
        many.append_child(item);
    }
    for (name, plain) in [
        ("ordinary", &ordinary),
        ("max_elements", &heavy),
        ("big_body", &big_body),
        ("many_elements", &many),
    ] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || alice.send_message(&alice_id, plain).unwrap().stanzas,
                |stanzas| {
                    let out = bob.handle_stanza(&stanzas[0]);
                    assert!(matches!(out.events[..], [Event::MessageReceived { .. }]));
                    black_box(out)
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench_unsolicited, bench_established);
criterion_main!(benches);
