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
    let config = Config {
        own_jid: Some(jid.to_owned()),
        groups,
        ..Config::default()
    };
    SessionManager::new(
        config,
        Box::new(SystemRandomness::new(Rng(seed))),
        Box::new(MemoryTrustStore::new()),
        Box::new(FixedClock(1_000)),
    )
}

/// Runs one negotiation; returns both parties' session ids.
pub fn negotiate(alice: &mut SessionManager, bob: &mut SessionManager) -> (SessionId, SessionId) {
    let (alice_id, offer) = alice.start_session(BOB).unwrap();
    let answer = bob.handle_stanza(&offer.stanzas[0]);
    let completion = alice.handle_stanza(&answer.stanzas[0]);
    let last = bob.handle_stanza(&completion.stanzas[0]);
    let bob_id = match &last.events[..] {
        [Event::Established { session, .. }] => session.clone(),
        other => panic!("{other:?}"),
    };
    let done = alice.handle_stanza(&last.stanzas[0]);
    assert!(matches!(done.events[..], [Event::Established { .. }]));
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
}
