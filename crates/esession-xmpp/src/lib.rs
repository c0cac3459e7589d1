//! XMPP transport for ESessions over tokio-xmpp: the only async library code.
//!
//! [`EsessionClient`] owns a tokio-xmpp
//! [`StanzaStream`](tokio_xmpp::stanzastream::StanzaStream) and an
//! [`esession::SessionManager`]; it routes incoming `<message/>`s to the core
//! by full JID and thread, sends what the core returns, answers service
//! discovery (XEP-0030) with our features and advertises them with entity
//! capabilities (XEP-0115), checks a contact's features before offering, and
//! runs the core's timers.
//!
//! The few lines an application needs are in `examples/echo.rs`
//! (`cargo run -p esession-xmpp --example echo`): build a
//! [`SessionManager`](esession::SessionManager) with a CSPRNG, a trust store and
//! [`SystemClock`], wrap a connection made by [`connect::client`] in an
//! [`EsessionClient`], then loop on [`EsessionClient::next_event`] and call
//! [`EsessionClient::start_session`] / [`EsessionClient::send_text`].

#![forbid(unsafe_code)]

mod client;
pub mod connect;
pub mod disco;

pub use client::{ClientError, ClientEvent, EsessionClient};

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
    CertificateProblem, ConnectError, ConnectOptions, LoginError, TransportSecurity, XmppConnection,
};
