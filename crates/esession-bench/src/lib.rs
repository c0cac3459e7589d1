//! Benchmarks only: see `benches/crypto.rs`, `benches/core.rs` and
//! `benches/hostile.rs`. Run `cargo bench -p esession-bench` (add `--features
//! bench-openssl` for the OpenSSL floor in the same run). This library holds
//! what the benches share: a fast deterministic generator (benchmarks only,
//! never a CSPRNG in use), managers and a negotiation in memory.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use esession::{
    Config, Event, FixedClock, MemoryTrustStore, SessionId, SessionManager, SystemRandomness,
};
use esession_crypto::ModpGroup;

/// Xorshift: deterministic and fast, for benchmarks only.
pub struct Rng(pub u64);
impl esession_crypto::rand_core::TryRng for Rng {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok((self.try_next_u64()? >> 32) as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        Ok(self.0)
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for chunk in dst.chunks_mut(8) {
            let v = self.try_next_u64()?.to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        Ok(())
    }
}
impl esession_crypto::rand_core::TryCryptoRng for Rng {}

pub const ALICE: &str = "alice@example.org/pda";
pub const BOB: &str = "bob@example.com/laptop";

pub fn manager(jid: &str, groups: Vec<ModpGroup>, seed: u64) -> SessionManager {
    manager_with(
        jid,
        Config {
            groups,
            limits: unlimited(),
            ..Config::default()
        },
        seed,
    )
}

/// Limits that never bite: the protocol benches negotiate thousands of
/// sessions between the same two JIDs and measure the protocol, not the
/// caps (`benches/hostile.rs` measures those).
pub fn unlimited() -> esession::Limits {
    esession::Limits {
        sessions_per_peer: usize::MAX,
        sessions_total: usize::MAX,
        expensive_answers_per_peer: u32::MAX,
        expensive_answers_total: u32::MAX,
        ..esession::Limits::default()
    }
}

/// Runs one negotiation; returns both parties' session ids. Bob's
/// `Established` may wait for Alice's proof of the retained secret (issue
/// 10), which she sends right after message 4: it is delivered too.
pub fn negotiate(alice: &mut SessionManager, bob: &mut SessionManager) -> (SessionId, SessionId) {
    let (alice_id, offer) = alice.start_session(BOB).unwrap();
    let answer = bob.handle_stanza(&offer.stanzas[0]);
    let completion = alice.handle_stanza(&answer.stanzas[0]);
    let last = bob.handle_stanza(&completion.stanzas[0]);
    let done = alice.handle_stanza(&last.stanzas[0]);
    assert!(matches!(done.events[..], [Event::Established { .. }]));
    let mut bob_events = last.events;
    for stanza in &done.stanzas {
        bob_events.extend(bob.handle_stanza(stanza).events);
    }
    let bob_id = bob_events
        .iter()
        .find_map(|e| match e {
            Event::Established { session, .. } => Some(session.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("Bob not established: {bob_events:?}"));
    (alice_id, bob_id)
}

/// A manager with `config` (its own JID set to `jid`) and the bench generator.
pub fn manager_with(jid: &str, config: Config, seed: u64) -> SessionManager {
    SessionManager::new(
        Config {
            own_jid: Some(jid.to_owned()),
            ..config
        },
        Box::new(SystemRandomness::new(Rng(seed))),
        Box::new(MemoryTrustStore::new()),
        Box::new(FixedClock(1_000)),
    )
    .unwrap()
}

/// A `<message type='chat'/>` with `body`, as an application hands it to
/// `send_message`.
pub fn chat_message(body: &str) -> esession_wire::minidom::Element {
    use esession_wire::minidom::Element;
    use esession_wire::ns;
    let mut plain = Element::bare("message", ns::JABBER_CLIENT);
    esession_wire::xml::set_attr(&mut plain, "type", "chat").unwrap();
    let mut body_el = Element::bare("body", ns::JABBER_CLIENT);
    body_el.append_text_node(body);
    plain.append_child(body_el);
    plain
}
