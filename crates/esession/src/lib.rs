//! The sans-IO protocol core of XMPP Encrypted Sessions: XEP-0201 threads,
//! XEP-0155 stanza session negotiation, the XEP-0116/XEP-0217 4-message
//! negotiation with SAS and retained secrets, the 3-message (SIGMA-I)
//! negotiation, public-key identification (`key`/`hash`/`none`), and XEP-0200
//! stanza encryption.
//!
//! ```text
//!   received <message/>, <presence/>, <iq/> ──► SessionManager::handle_stanza ──► Output { stanzas, events }
//!   user intent ──► start_session / send_message / send_stanza / rekey / terminate / confirm_sas ──► Output
//!   timer (next_deadline) ──► poll_timers ──► Output (timeouts, XEP-0200 rekeys, key expiry)
//! ```
//!
//! No sockets, files, clocks or global RNG: randomness ([`Randomness`]), time
//! ([`Clock`]) and memory of peers ([`TrustStore`]) are injected. Stanzas are
//! minidom [`Element`](esession_wire::minidom::Element)s, as in the xmpp-rs ecosystem.
//!
//! A negotiation advances through states that are consumed by each step; only
//! an established session holds stanza keys, and only it can encrypt.
//!
//! The whole driving loop, with two managers and the network in memory:
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use esession::{Config, Event, FixedClock, MemoryTrustStore, SessionManager, SystemRandomness};
//! use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
//!
//! let manager = |jid: &str, seed| {
//!     SessionManager::new(
//!         Config { own_jid: Some(jid.to_owned()), ..Config::default() },
//!         // Seeded for the example; seed from the operating system in real use.
//!         Box::new(SystemRandomness::new(ChaCha20Rng::seed_from_u64(seed))),
//!         Box::new(MemoryTrustStore::new()),
//!         Box::new(FixedClock(1_700_000_000)),
//!     )
//! };
//! let mut alice = manager("alice@example.org/pda", 1)?;
//! let mut bob = manager("bob@example.com/laptop", 2)?;
//!
//! // Alice offers; each side hands what it receives to its manager and
//! // sends what comes out, until both are quiet (4 messages).
//! let (session, offer) = alice.start_session("bob@example.com/laptop")?;
//! let mut to_bob = offer.stanzas;
//! while !to_bob.is_empty() {
//!     let to_alice: Vec<_> = to_bob.iter().flat_map(|s| bob.handle_stanza(s).stanzas).collect();
//!     to_bob = to_alice.iter().flat_map(|s| alice.handle_stanza(s).stanzas).collect();
//! }
//! assert!(alice.is_established(&session));
//!
//! // Encrypted: only <c/> goes over the wire; Bob's manager delivers the message.
//! let sealed = alice.send_text(&session, "hello, Bob")?;
//! let received = bob.handle_stanza(&sealed.stanzas[0]);
//! assert!(received.events.iter().any(|e| matches!(e, Event::MessageReceived { .. })));
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

pub mod archiving;
pub mod clock;
pub mod config;
mod error;
pub mod event;
#[doc(hidden)]
pub mod fuzzing;
mod identity;
pub mod key_pool;
mod manager;
mod negotiation;
pub mod offline;
pub mod profile;
pub mod published;
pub mod random;
mod session;
pub mod ssn;
mod stanza;
pub mod thread;
pub mod trust;

pub use archiving::{ArchivingConflict, OtrPolicy};
pub use clock::{Clock, FixedClock};
pub use config::{Config, FlowPolicy, Limits, PubkeyMethod, ResponderChoice};
pub use error::{ConfigError, Error, Fault, LimitKind};
pub use event::{
    BrokenChain, Event, OfflineRejection, Output, PeerKeyInfo, SecurityAlert, SessionId,
    SessionInfo, TerminationReason,
};
pub use key_pool::{KeyPairPool, PooledRandomness};
pub use manager::SessionManager;
pub use profile::{Profile, looks_like_gajim};
pub use random::{RandomPurpose, Randomness, SystemRandomness};
pub use session::EstablishedSession;
pub use stanza::StanzaKind;
pub use trust::{
    MemoryTrustStore, PeerKeyObservation, PeerKeyStatus, RetainedSecret, StoredPeerKey, TrustStore,
    TrustStoreError, key_fingerprint,
};
