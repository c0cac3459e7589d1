#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
//! Issue 16: heap per established session, counted by dhat (every
//! allocation of the process; no unsafe code of ours), `cargo bench -p
//! esession-bench --bench memory`.
//!
//! One responder manager establishes 10,000 sessions, each with its own
//! initiator manager, which is dropped right after: what stays allocated is
//! the responder's sessions (and its own bookkeeping). Then the zlib case:
//! sessions that negotiated zlib and carried a message each way, so both
//! directions' compression contexts are live, beside the bound the
//! configuration puts on them (`Limits::compressed_sessions_total`).

use esession::{Config, Event, SessionId};
use esession_bench::{BOB, chat_message, manager_with, negotiate, unlimited};
use esession_crypto::CompressionAlgorithm;
use esession_crypto::ModpGroup;

#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

fn live_bytes() -> usize {
    dhat::HeapStats::get().curr_bytes
}

fn config(compression: CompressionAlgorithm) -> Config {
    Config {
        groups: vec![ModpGroup::Group14],
        compression: vec![compression],
        limits: unlimited(),
        ..Config::default()
    }
}

/// Establishes `count` sessions in a fresh responder; with `exchange`, one
/// message each way per session. Returns the responder's heap per session.
fn per_session(count: usize, compression: CompressionAlgorithm, exchange: bool) -> f64 {
    let mut bob = manager_with(BOB, config(compression), 2);
    let before = live_bytes();
    for i in 0..count {
        let mut alice = manager_with(
            &format!("peer{i}@example.org/r"),
            config(compression),
            1_000 + i as u64,
        );
        let (alice_id, bob_id): (SessionId, SessionId) = negotiate(&mut alice, &mut bob);
        if exchange {
            let there = alice
                .send_message(&alice_id, &chat_message("hello"))
                .unwrap();
            let received = bob.handle_stanza(&there.stanzas[0]);
            assert!(matches!(
                received.events[..],
                [Event::MessageReceived { .. }]
            ));
            let back = bob.send_message(&bob_id, &chat_message("hi")).unwrap();
            assert!(!back.stanzas.is_empty());
        }
        drop(alice);
    }
    let after = live_bytes();
    assert_eq!(bob.established_sessions().count(), count);
    (after.saturating_sub(before)) as f64 / count as f64
}

/// The heap a `MemoryTrustStore` holds per peer for one retained secret
/// (what each negotiation above stored: a 32-byte secret for the peer's
/// client `r`).
fn trust_store_per_peer(peers: usize) -> f64 {
    use esession::{MemoryTrustStore, RetainedSecret, TrustStore};
    let mut store = MemoryTrustStore::new();
    let before = live_bytes();
    for i in 0..peers {
        store
            .store_retained_secret(
                &format!("peer{i}@example.org"),
                RetainedSecret {
                    client: "r".to_owned(),
                    secret: esession_crypto::SecretBytes::from_slice(&[7u8; 32]),
                    created: 1_000,
                    verified: false,
                },
            )
            .unwrap();
    }
    let after = live_bytes();
    drop(store);
    (after.saturating_sub(before)) as f64 / peers as f64
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    // ESESSION_DHAT_FILE=path: a dhat profile of 1,000 sessions instead, to
    // see which allocation sites hold the bytes (dh_view.html reads it).
    if let Ok(file) = std::env::var("ESESSION_DHAT_FILE") {
        let _profiler = dhat::Profiler::builder().file_name(file).build();
        per_session(1_000, CompressionAlgorithm::None, false);
        return;
    }
    let _profiler = dhat::Profiler::builder().testing().build();
    const SESSIONS: usize = 10_000;
    println!("# esession memory bench (dhat counts every heap allocation)\n");
    let plain = per_session(SESSIONS, CompressionAlgorithm::None, false);
    let store = trust_store_per_peer(SESSIONS);
    println!(
        "{SESSIONS} established sessions, no compression: {:.0} bytes of heap per session, \
         the in-memory trust store's retained secret included ({:.2} KiB)",
        plain,
        plain / 1024.0
    );
    println!(
        "  of which the MemoryTrustStore's retained secret per peer: {store:.0} bytes (the \
         SQLite store keeps it on disk); the session itself: {:.0} bytes ({:.2} KiB; target \
         <= 4 KiB)",
        plain - store,
        (plain - store) / 1024.0
    );
    let used = per_session(1_000, CompressionAlgorithm::None, true);
    println!(
        "1,000 sessions, no compression, after one message each way: {:.0} bytes per session \
         ({:.2} KiB)",
        used,
        used / 1024.0
    );
    // Under the default cap on compressed sessions, which the benches'
    // unlimited() keeps.
    let bound = esession::Limits::default().compressed_sessions_total;
    let zlib_sessions = bound.min(200);
    let idle_zlib = per_session(zlib_sessions, CompressionAlgorithm::Zlib, false);
    let zlib = per_session(zlib_sessions, CompressionAlgorithm::Zlib, true);
    println!(
        "{zlib_sessions} sessions with zlib: {:.0} bytes per session before any message \
         (contexts are made on first use), {:.0} KiB after one message each way; zlib is off \
         unless Config::compression allows it, and then at most {bound} such sessions \
         (Limits::compressed_sessions_total) = {:.0} MiB at most",
        idle_zlib,
        zlib / 1024.0,
        zlib * bound as f64 / (1024.0 * 1024.0)
    );
}
