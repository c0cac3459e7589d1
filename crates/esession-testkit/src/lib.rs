//! Test and benchmark support for the ESession stack (not published):
//!
//! - [`prosody`]: private Prosody servers on loopback (one host, or two
//!   federated hosts `a.test` and `b.test`), started and stopped by the fixture;
//! - [`peer`]: ESession clients over those servers with persistent stores, and
//!   waiting for their events with timeouts and clear failures;
//! - [`prosody_or_skip`]: the gate every Prosody test starts with.
//!
//! Used by `crates/esession-xmpp/tests`, `crates/esession-cli/tests` and the
//! `prosody_e2e` benchmark of `esession-bench`.
//!
//! Environment: `ESESSION_REQUIRE_PROSODY=1` makes a missing Prosody a test
//! failure (CI); `ESESSION_KEEP_PROSODY=1` keeps each server's directory
//! (config, data, log) after the test (it is always kept when a test fails);
//! `ESESSION_PROSODY_LOG=debug` makes Prosody log every stanza's top tag.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test support: a failed fixture step must fail the test loudly"
)]

use std::io::Write as _;

pub mod peer;
pub mod prosody;

pub use prosody::{Archive, Installed, Prosody, Validity, self_signed_certificate};

/// The environment variable that turns a missing Prosody into a failure (CI sets it).
pub const REQUIRE_PROSODY: &str = "ESESSION_REQUIRE_PROSODY";

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
