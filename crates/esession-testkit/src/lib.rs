//! Test and benchmark support for the ESession stack (not published):
//!
//! - [`prosody`]: private Prosody servers on loopback (one host, or two
//!   federated hosts `a.test` and `b.test`), started and stopped by the fixture;
//! - [`ejabberd`]: private ejabberd servers on loopback, likewise; and
//!   [`mixed_federation`], a Prosody host and an ejabberd host federated;
//! - [`dns`]: a tiny DNS responder on a loopback UDP port (ejabberd's s2s
//!   lookups, and the client's own DNS handling);
//! - [`plain`]: contacts whose client has no ESessions (or claims them and
//!   stays silent), over the raw tokio-xmpp stream;
//! - [`relay`]: a loopback TCP relay whose connections a test can cut
//!   (network failures, XEP-0198 resumption);
//! - [`XmppServer`]: what tests need from either server, so that one test
//!   runs against both;
//! - [`peer`]: ESession clients over those servers with persistent stores, and
//!   waiting for their events with timeouts and clear failures;
//! - [`prosody_or_skip`], [`ejabberd_or_skip`]: the gate every real-server
//!   test starts with.
//!
//! Used by `crates/esession-xmpp/tests`, `crates/esession-cli/tests` and the
//! `prosody_e2e` benchmark of `esession-bench`.
//!
//! Environment: `ESESSION_REQUIRE_PROSODY=1` / `ESESSION_REQUIRE_EJABBERD=1`
//! make a missing Prosody / ejabberd a test failure (CI sets both);
//! `ESESSION_KEEP_PROSODY=1` / `ESESSION_KEEP_EJABBERD=1` keep each server's
//! directory (config, data, log) after the test (it is always kept when a
//! test fails); `ESESSION_PROSODY_LOG=debug` makes Prosody log every
//! stanza's top tag, `ESESSION_EJABBERD_LOG=debug` likewise for ejabberd.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test support: a failed fixture step must fail the test loudly"
)]

use std::io::Write as _;

pub mod dns;
pub mod ejabberd;
pub mod peer;
pub mod plain;
pub mod prosody;
pub mod relay;

pub use dns::DnsResponder;
pub use ejabberd::Ejabberd;
pub use prosody::{Archive, Installed, Prosody, Validity, self_signed_certificate};
pub use relay::TcpRelay;

use esession_xmpp::ConnectOptions;

/// A port that was free a moment ago (bound to port 0, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("cannot bind a loopback port")
}

/// Every file under `dir` with its contents, sorted by path (for searching
/// a server's data, logs and config for plaintext).
pub fn all_files(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(dir) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                files.push((path, bytes));
            }
        }
    }
    files.sort();
    files
}

/// What a test needs from a private XMPP server, whichever it is.
pub trait XmppServer {
    /// `Prosody` or `ejabberd`, for messages.
    fn kind(&self) -> &'static str;
    /// The virtual host.
    fn domain(&self) -> &str;
    /// Creates (or resets) the account `user@domain`.
    fn register(&self, user: &str, password: &str);
    /// Login options for `user@domain/resource` (STARTTLS, trusting only
    /// the server's certificate or CA).
    fn connect_options(&self, user: &str, resource: &str, password: &str) -> ConnectOptions;
    /// The server's log so far.
    fn log(&self) -> String;
    /// The c2s port on 127.0.0.1.
    fn c2s_port(&self) -> u16;
    /// The certificate file clients trust for this server.
    fn ca_file(&self) -> std::path::PathBuf;
}

impl XmppServer for Prosody {
    fn kind(&self) -> &'static str {
        "Prosody"
    }
    fn domain(&self) -> &str {
        Prosody::domain(self)
    }
    fn register(&self, user: &str, password: &str) {
        Prosody::register(self, user, password);
    }
    fn connect_options(&self, user: &str, resource: &str, password: &str) -> ConnectOptions {
        Prosody::connect_options(self, user, resource, password)
    }
    fn log(&self) -> String {
        Prosody::log(self)
    }
    fn c2s_port(&self) -> u16 {
        Prosody::c2s_port(self)
    }
    fn ca_file(&self) -> std::path::PathBuf {
        Prosody::ca_file(self)
    }
}

impl XmppServer for Ejabberd {
    fn kind(&self) -> &'static str {
        "ejabberd"
    }
    fn domain(&self) -> &str {
        Ejabberd::domain(self)
    }
    fn register(&self, user: &str, password: &str) {
        Ejabberd::register(self, user, password);
    }
    fn connect_options(&self, user: &str, resource: &str, password: &str) -> ConnectOptions {
        Ejabberd::connect_options(self, user, resource, password)
    }
    fn log(&self) -> String {
        Ejabberd::log(self)
    }
    fn c2s_port(&self) -> u16 {
        Ejabberd::c2s_port(self)
    }
    fn ca_file(&self) -> std::path::PathBuf {
        Ejabberd::ca_file(self)
    }
}

/// The environment variable that turns a missing Prosody into a failure (CI sets it).
pub const REQUIRE_PROSODY: &str = "ESESSION_REQUIRE_PROSODY";

/// The environment variable that turns a missing ejabberd into a failure (CI sets it).
pub const REQUIRE_EJABBERD: &str = "ESESSION_REQUIRE_EJABBERD";

/// `Some` when Prosody is installed. Otherwise prints a loud `SKIPPED` banner
/// (straight to stderr, so the test harness does not swallow it) and returns
/// `None` — unless `ESESSION_REQUIRE_PROSODY=1`, in which case it panics.
pub fn prosody_or_skip(test: &str) -> Option<Installed> {
    if let Some(installed) = prosody::installed() {
        return Some(installed);
    }
    if std::env::var(REQUIRE_PROSODY).is_ok_and(|v| v == "1") {
        panic!(
            "{test}: {REQUIRE_PROSODY}=1 but prosody/prosodyctl (or openssl) is not installed: \
             apt-get install -y prosody"
        );
    }
    let _ = writeln!(
        std::io::stderr(),
        "\n{bar}\nSKIPPED: prosody not installed — the real-server test `{test}` did NOT run.\n\
         Install Debian's prosody package (apt-get install -y prosody) to run it;\n\
         set {REQUIRE_PROSODY}=1 to make a missing Prosody a failure.\n{bar}\n",
        bar = "!".repeat(78)
    );
    None
}

/// `Some` when ejabberd is installed. Otherwise prints a loud `SKIPPED`
/// banner and returns `None` — unless `ESESSION_REQUIRE_EJABBERD=1`, in which
/// case it panics.
pub fn ejabberd_or_skip(test: &str) -> Option<ejabberd::Installed> {
    if let Some(installed) = ejabberd::installed() {
        return Some(installed);
    }
    if std::env::var(REQUIRE_EJABBERD).is_ok_and(|v| v == "1") {
        panic!(
            "{test}: {REQUIRE_EJABBERD}=1 but ejabberd (/usr/sbin/ejabberdctl, erl) or openssl \
             is not installed: apt-get install -y ejabberd"
        );
    }
    let _ = writeln!(
        std::io::stderr(),
        "\n{bar}\nSKIPPED: ejabberd not installed — the real-server test `{test}` did NOT run.\n\
         Install Debian's ejabberd package (apt-get install -y ejabberd; see .ci/run for how\n\
         to keep its system service from starting) to run it;\n\
         set {REQUIRE_EJABBERD}=1 to make a missing ejabberd a failure.\n{bar}\n",
        bar = "!".repeat(78)
    );
    None
}

/// A Prosody host and an ejabberd host on loopback, federated, and the DNS
/// responder ejabberd finds Prosody through.
pub struct MixedFederation {
    /// `prosody.test`.
    pub prosody: Prosody,
    /// `ejabberd.test`.
    pub ejabberd: Ejabberd,
    /// Answers ejabberd's SRV query for `_xmpp-server._tcp.prosody.test`.
    pub dns: DnsResponder,
}

impl core::fmt::Debug for MixedFederation {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MixedFederation")
            .field("prosody", &self.prosody)
            .field("ejabberd", &self.ejabberd)
            .finish_non_exhaustive()
    }
}

/// `prosody.test` (Prosody) and `ejabberd.test` (ejabberd), federated on
/// 127.0.0.1: Prosody reaches ejabberd through its static-route plugin;
/// ejabberd resolves `_xmpp-server._tcp.prosody.test` with its own resolver
/// (inetrc), which asks a [`DnsResponder`] on a loopback UDP port. s2s uses
/// STARTTLS; the servers authenticate each other by certificate where they
/// can and by dialback otherwise.
pub fn mixed_federation(
    prosody: &prosody::Installed,
    ejabberd: &ejabberd::Installed,
    archive: Archive,
) -> MixedFederation {
    let dns = DnsResponder::start();
    let (p_s2s, e_s2s) = (free_port(), free_port());
    dns.add_srv("_xmpp-server._tcp.prosody.test", "localhost", p_s2s);
    dns.add_a("localhost", std::net::Ipv4Addr::LOCALHOST);
    let prosody = prosody.federated_server(
        "prosody.test",
        archive,
        p_s2s,
        vec![("ejabberd.test".to_owned(), e_s2s)],
    );
    let ejabberd = ejabberd.federated_server(
        "ejabberd.test",
        &ejabberd::Options::default(),
        &ejabberd::S2s {
            port: e_s2s,
            dns: dns.address(),
            trust: vec![prosody.ca_file()],
        },
    );
    MixedFederation {
        prosody,
        ejabberd,
        dns,
    }
}
