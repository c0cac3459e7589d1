#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]
//! Issue 11: the state an unsolicited offer leaves behind, measured with a
//! counting allocator (dhat; heap bytes live after the offers minus before).

use esession::{Config, FixedClock, MemoryTrustStore, SessionManager, SystemRandomness};
use esession_wire::minidom::Element;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;

// dhat counts every heap allocation (no unsafe code of ours).
#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

fn live_bytes() -> isize {
    dhat::HeapStats::get().curr_bytes as isize
}

const BOB: &str = "bob@example.com/laptop";

fn manager(jid: &str, config: Config, seed: u64) -> SessionManager {
    SessionManager::new(
        Config {
            own_jid: Some(jid.to_owned()),
            ..config
        },
        Box::new(SystemRandomness::new(ChaCha20Rng::seed_from_u64(seed))),
        Box::new(MemoryTrustStore::new()),
        Box::new(FixedClock(1_700_000_000)),
    )
}

/// `offer` with an optional field of `pad` bytes added to its form.
fn padded(offer: &Element, pad: usize) -> Element {
    let mut offer = offer.clone();
    for feature in offer.children_mut() {
        for form in feature.children_mut() {
            if form.name() == "x" {
                let mut field = Element::bare("field", "jabber:x:data");
                esession_wire::xml::set_attr(&mut field, "var", "x-padding").unwrap();
                let mut value = Element::bare("value", "jabber:x:data");
                value.append_text_node("p".repeat(pad));
                field.append_child(value);
                form.append_child(field);
            }
        }
    }
    offer
}

fn feature_len(offer: &Element) -> usize {
    let feature = offer.children().find(|c| c.name() == "feature").unwrap();
    esession_wire::xml::serialize(feature, "").unwrap().len()
}

/// Heap bytes Bob still holds after answering each of `offers` (minus the
/// answers and events, which are the application's), per offer.
fn retained_per_offer(offers: &[Element]) -> isize {
    let mut bob = manager(BOB, Config::default(), 2);
    // Warm up the maps once, so their first growth is not counted.
    drop(bob.handle_stanza(&offers[0]));
    let before = live_bytes();
    for offer in &offers[1..] {
        let out = bob.handle_stanza(offer);
        assert_eq!(out.stanzas.len(), 1, "answered");
        drop(out);
    }
    let after = live_bytes();
    drop(bob);
    (after - before) / (offers.len() as isize - 1)
}

#[test]
fn an_unsolicited_offer_leaves_at_most_16_kib_behind() {
    let _profiler = dhat::Profiler::builder().testing().build();
    // Default offers (all eight groups) from four strangers (the per-JID cap
    // does not drop any), each answered and kept until message 3.
    let offers: Vec<Element> = (0..4)
        .map(|i| {
            let jid = format!("stranger{i}@example.org/x");
            let mut alice = manager(&jid, Config::default(), 10 + i);
            let (_, out) = alice.start_session(BOB).unwrap();
            let mut offer = out.stanzas[0].clone();
            esession_wire::xml::set_attr(&mut offer, "from", jid.as_str()).unwrap();
            offer
        })
        .collect();
    let size = esession_wire::xml::serialize(&offers[1], "jabber:client")
        .unwrap()
        .len();
    let retained = retained_per_offer(&offers);
    eprintln!("an offer of {size} bytes leaves {retained} bytes of state");
    assert!(retained > 0, "the answered negotiation is kept");
    assert!(retained <= 16 * 1024, "{retained} bytes retained");

    // The largest offer we evaluate (Limits::max_offer_len), padded with an
    // optional field: still answered, still under 16 KiB of state.
    let max = Config::default().limits.max_offer_len;
    let pad = max - feature_len(&offers[1]) - 64;
    let largest: Vec<Element> = offers.iter().map(|o| padded(o, pad)).collect();
    assert!(feature_len(&largest[1]) <= max);
    let retained = retained_per_offer(&largest);
    eprintln!(
        "an offer of {} bytes leaves {retained} bytes of state",
        feature_len(&largest[1])
    );
    assert!(retained <= 16 * 1024, "{retained} bytes retained");

    // One byte over: refused before anything is kept.
    let mut bob = manager(BOB, Config::default(), 3);
    drop(bob.handle_stanza(&offers[0]));
    let over = padded(&offers[1], max);
    let before = live_bytes();
    let out = bob.handle_stanza(&over);
    assert!(matches!(
        out.events[..],
        [esession::Event::NegotiationFailed {
            error: esession::Error::LimitReached(esession::LimitKind::OfferTooLarge),
            ..
        }]
    ));
    drop(out);
    assert!(live_bytes() - before <= 0, "nothing kept");
}
