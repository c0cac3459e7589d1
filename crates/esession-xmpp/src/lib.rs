//! XMPP transport for ESessions over tokio-xmpp: the only async library code.
//!
//! [`EsessionClient`] owns a tokio-xmpp
//! [`StanzaStream`](tokio_xmpp::stanzastream::StanzaStream) and an
//! [`esession::SessionManager`]; it routes incoming `<message/>`s, every
//! `<presence/>` and the `<iq/>`s that are encrypted or belong to a session
//! (AMB-26) to the core, sends what the core returns, answers service
//! discovery (XEP-0030) and pings (XEP-0199) — encrypted inside a session
//! that agreed iq — advertises our features with entity capabilities
//! (XEP-0115), checks a contact's features before offering, and runs the
//! core's timers. A contact's unavailable presence ends its sessions
//! (SSN-16, [`esession::TerminationReason::PeerUnavailable`]). The roster,
//! requested at login and kept current by the server's pushes, tells the core
//! who is subscribed to our presence
//! ([`esession::SessionManager::set_presence_subscription`]); with
//! [`esession::Config::answer_only_subscribers`] offers from anyone else wait
//! for the user and are never answered automatically (SSN-09, ESN-07).
//!
//! Presence and iq are encrypted only in sessions that agreed them
//! ([`esession::Config::stanzas`]); send them with
//! [`EsessionClient::send_stanza`]. Decrypted ones arrive as
//! [`esession::Event::StanzaReceived`], and an `<iq/>` request among them
//! must be answered by the application, through `send_stanza` (or
//! [`EsessionClient::refuse_iq`]).
//!
//! Two ways in:
//!
//! - **A whole client of ours**: the few lines are in `examples/echo.rs`
//!   (`cargo run -p esession-xmpp --example echo`): build a
//!   [`SessionManager`](esession::SessionManager) with a CSPRNG, a trust store
//!   and [`SystemClock`], wrap a connection made by [`connect::client`] (or
//!   any tokio-xmpp `StanzaStream`, [`EsessionClient::from_stream`]) in an
//!   [`EsessionClient`], then loop on [`EsessionClient::next_event`] and call
//!   [`EsessionClient::start_session`] / [`EsessionClient::send_text`].
//! - **Bring your own stream**: an application that already drives a
//!   tokio-xmpp client keeps it and adds the [`Esessions`] layer
//!   ([`Mode::Embedded`]): it hands the layer every event, sends what the
//!   layer queues, and gets back every stanza that is not ESession traffic
//!   (15 lines, in the `layer` documentation of [`Esessions`]).

#![forbid(unsafe_code)]

pub mod archive;
mod client;
pub mod connect;
pub mod disco;
pub mod key_pool;
mod layer;
mod nesting;
mod roster;

pub use client::{EsessionClient, FetchedKeys, RosterEntry};
pub use layer::{ClientError, ClientEvent, Esessions, Mode};

/// The operating system's clock, for [`esession::SessionManager`].
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl esession::Clock for SystemClock {
    fn now_unix(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}
pub use connect::{
    CertificateProblem, ConnectError, ConnectOptions, ConnectProblem, LoginError, LoginInfo,
    MechanismFailure, PresentedCertificate, TransportSecurity, XmppConnection, presented_clause,
};
