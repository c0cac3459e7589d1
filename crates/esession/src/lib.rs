//! The sans-IO protocol core of XMPP Encrypted Sessions: XEP-0201 threads,
//! XEP-0155 stanza session negotiation, the XEP-0116/XEP-0217 4-message
//! negotiation with SAS and retained secrets, and XEP-0200 stanza encryption.
//!
//! ```text
//!   received <message/> ──► SessionManager::handle_stanza ──► Output { stanzas, events }
//!   user intent         ──► start_session / send_message / terminate / confirm_sas ──► Output
//! ```
//!
//! No sockets, files, clocks or global RNG: randomness ([`Randomness`]), time
//! ([`Clock`]) and memory of peers ([`TrustStore`]) are injected. Stanzas are
//! minidom [`Element`](esession_wire::minidom::Element)s, as in the xmpp-rs ecosystem.
//!
//! A negotiation advances through states that are consumed by each step; only
//! an established session holds stanza keys, and only it can encrypt.

#![forbid(unsafe_code)]

pub mod clock;
pub mod config;
mod error;
pub mod event;
#[doc(hidden)]
pub mod fuzzing;
mod manager;
mod negotiation;
pub mod random;
mod session;
pub mod ssn;
mod stanza;
pub mod thread;
pub mod trust;

pub use clock::{Clock, FixedClock};
pub use config::Config;
pub use error::Error;
pub use event::{Event, Output, SecurityAlert, SessionId, SessionInfo, TerminationReason};
pub use manager::SessionManager;
pub use random::{RandomPurpose, Randomness, SystemRandomness};
pub use session::EstablishedSession;
pub use trust::{MemoryTrustStore, RetainedSecret, TrustStore, TrustStoreError};
