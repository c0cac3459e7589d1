//! Logging in on the servers people run, securely, and telling them quickly
//! and clearly when it cannot work.
//!
//! Against a private Prosody 0.12 and private ejabberd 23.01 servers (each
//! at its default SASL settings, STARTTLS, TLS 1.3):
//!
//! - `prosody_logs_in_with_scram`: the right password logs in with
//!   SCRAM-SHA-1 (Prosody offers no -PLUS on TLS 1.3: gs2 flag `y`), not
//!   PLAIN; a wrong password and an unknown account are `WrongCredentials`;
//!   the login also works through the client's own SRV lookup.
//! - `ejabberd_logs_in_with_scram`: ejabberd offers SCRAM-SHA-1-PLUS, but
//!   checks only `tls-unique` channel binding, which TLS 1.3 does not define:
//!   our `tls-exporter` binding is refused ("Invalid channel binding" in its
//!   log, `not-authorized` on the wire), and plain SCRAM-SHA-1 logs in on the
//!   same stream. A wrong password and an unknown account are still
//!   `WrongCredentials` (not "channel binding failed").
//! - `ejabberd_every_scram_hash`: with plaintext password storage ejabberd
//!   offers SCRAM-SHA-512/256/1 (and -PLUS): SCRAM-SHA-512 is chosen; with
//!   SHA-512 and every -PLUS switched off, SCRAM-SHA-256 (gs2 `y`), never
//!   PLAIN. So each hash is checked against an independent implementation.
//!
//! Without a server (a DNS responder on loopback stands in for DNS):
//!
//! - `wrong_domain_is_reported_within_5_s`, `silent_dns_is_reported_within_5_s`,
//!   `no_xmpp_service_is_reported`, `closed_port_is_reported_within_5_s`,
//!   `unroutable_host_is_reported_within_5_s`: the first login fails for
//!   good, at once, with a message saying what happened and what to do.
//!
//! The server tests print a loud SKIPPED banner and pass without Prosody /
//! ejabberd, unless `ESESSION_REQUIRE_PROSODY=1` / `ESESSION_REQUIRE_EJABBERD=1`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::time::Duration;

use esession::{Config, MemoryTrustStore};
use esession_testkit::ejabberd::{Options, PasswordStorage};
use esession_testkit::peer::{Peer, fatal_login, manager};
use esession_testkit::{
    Archive, DnsResponder, XmppServer, ejabberd_or_skip, free_port, prosody_or_skip,
};
use esession_xmpp::{ConnectOptions, ConnectProblem, LoginError, LoginInfo, TransportSecurity};

/// Logs `user` in with `password` (must succeed) and returns how.
async fn login_info(server: &impl XmppServer, user: &str, password: &str) -> LoginInfo {
    login_with(&server.connect_options(user, "r", password)).await
}

async fn login_with(options: &ConnectOptions) -> LoginInfo {
    let mut peer = Peer::login(
        "login",
        options,
        manager(Box::new(MemoryTrustStore::new()), Config::default()),
    )
    .await;
    let info = peer.client().login_info().expect("login info once online");
    peer.disconnect().await;
    info
}

/// A wrong password and an account that does not exist are both
/// `WrongCredentials`, reported within seconds.
async fn refused(server: &impl XmppServer, user: &str) {
    for (who, password) in [(user, "not-the-password"), ("nobody", "whatever")] {
        let (client, error, _) = fatal_login(&server.connect_options(who, "r", password)).await;
        assert_eq!(
            error,
            LoginError::WrongCredentials,
            "{} {who}",
            server.kind()
        );
        client.disconnect().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prosody_logs_in_with_scram() {
    let Some(prosody) = prosody_or_skip("prosody_logs_in_with_scram") else {
        return;
    };
    let server = prosody.server("srv.test", Archive::Off);
    server.register("alice", "alice-pw");
    let info = login_info(&server, "alice", "alice-pw").await;
    assert_eq!(info.mechanism, "SCRAM-SHA-1");
    assert_eq!(info.channel_binding, None);
    assert_eq!(info.tls_version.as_deref(), Some("TLSv1.3"));
    assert!(info.earlier_failures.is_empty(), "{info:?}");
    refused(&server, "alice").await;

    // The client's own SRV lookup: no host or port, only the JID's domain.
    let dns = DnsResponder::start();
    dns.add_srv("_xmpp-client._tcp.srv.test", "localhost", server.c2s_port());
    dns.add_a("localhost", std::net::Ipv4Addr::LOCALHOST);
    let options = ConnectOptions {
        host: None,
        port: None,
        dns_server: Some(dns.address()),
        ..server.connect_options("alice", "srv", "alice-pw")
    };
    assert_eq!(login_with(&options).await.mechanism, "SCRAM-SHA-1");
    assert!(
        dns.queries()
            .iter()
            .any(|q| q == "_xmpp-client._tcp.srv.test. SRV"),
        "{:?}",
        dns.queries()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ejabberd_logs_in_with_scram() {
    let Some(ejabberd) = ejabberd_or_skip("ejabberd_logs_in_with_scram") else {
        return;
    };
    let server = ejabberd.server("ejabberd.test", &Options::default());
    server.register("alice", "alice-pw");
    let info = login_info(&server, "alice", "alice-pw").await;
    assert_eq!(info.mechanism, "SCRAM-SHA-1", "{info:?}");
    assert_eq!(info.channel_binding, None);
    assert_eq!(info.tls_version.as_deref(), Some("TLSv1.3"));
    // SCRAM-SHA-1-PLUS with tls-exporter was tried first and refused.
    assert_eq!(info.earlier_failures.len(), 1, "{info:?}");
    let plus = &info.earlier_failures[0];
    assert_eq!(plus.mechanism, "SCRAM-SHA-1-PLUS");
    assert_eq!(plus.channel_binding.as_deref(), Some("tls-exporter"));
    assert!(plus.reason.contains("Invalid channel binding"), "{plus:?}");
    let log = server.wait_for_log(&[
        "Failed c2s SCRAM-SHA-1-PLUS authentication from 127.0.0.1: Invalid channel binding",
        "Accepted c2s SCRAM-SHA-1 authentication for alice@ejabberd.test",
    ]);
    assert!(!log.contains("PLAIN authentication"), "{log}");
    refused(&server, "alice").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ejabberd_every_scram_hash() {
    let Some(ejabberd) = ejabberd_or_skip("ejabberd_every_scram_hash") else {
        return;
    };
    let all = ejabberd.server(
        "ejabberd.test",
        &Options {
            passwords: PasswordStorage::Plain,
            ..Options::default()
        },
    );
    all.register("alice", "alice-pw");
    let info = login_info(&all, "alice", "alice-pw").await;
    assert_eq!(info.mechanism, "SCRAM-SHA-512", "{info:?}");
    // Only SCRAM-SHA-512-PLUS was tried before: one refused binding skips
    // the other -PLUS mechanisms.
    let before: Vec<&str> = info
        .earlier_failures
        .iter()
        .map(|f| f.mechanism.as_str())
        .collect();
    assert_eq!(before, ["SCRAM-SHA-512-PLUS"]);
    refused(&all, "alice").await;

    let disabled = [
        "SCRAM-SHA-512",
        "SCRAM-SHA-512-PLUS",
        "SCRAM-SHA-256-PLUS",
        "SCRAM-SHA-1-PLUS",
    ];
    let no_plus = ejabberd.server(
        "ejabberd.test",
        &Options {
            passwords: PasswordStorage::Plain,
            disabled_mechanisms: disabled.iter().map(|m| (*m).to_owned()).collect(),
        },
    );
    no_plus.register("alice", "alice-pw");
    let info = login_info(&no_plus, "alice", "alice-pw").await;
    assert_eq!(info.mechanism, "SCRAM-SHA-256", "{info:?}");
    assert!(info.earlier_failures.is_empty(), "{info:?}");
    refused(&no_plus, "alice").await;
}

fn options_for(jid: &str, host: Option<&str>, port: Option<u16>) -> ConnectOptions {
    ConnectOptions {
        jid: jid.to_owned(),
        password: "pw".to_owned(),
        host: host.map(str::to_owned),
        port,
        security: TransportSecurity::StartTls { ca_file: None },
        dns_server: None,
    }
}

/// A domain that does not exist: NXDOMAIN for the SRV and the address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_domain_is_reported_within_5_s() {
    let dns = DnsResponder::start();
    let options = ConnectOptions {
        dns_server: Some(dns.address()),
        ..options_for("alice@no-such-domain.test", None, None)
    };
    let (_client, error, _) = fatal_login(&options).await;
    assert_eq!(
        error,
        LoginError::DomainNotFound {
            domain: "no-such-domain.test".to_owned()
        }
    );
    assert_eq!(
        error.to_string(),
        "There is no server for no-such-domain.test: that domain does not exist in DNS. \
         Check the part of the JID after the @ for typing errors, or give the server's host \
         name and port."
    );
    // A host name given explicitly: the message is about that host.
    let options = ConnectOptions {
        dns_server: Some(dns.address()),
        ..options_for("alice@example.test", Some("xmpp.no-such-domain.test"), None)
    };
    let (_client, error, _) = fatal_login(&options).await;
    assert_eq!(
        error,
        LoginError::HostNotFound {
            host: "xmpp.no-such-domain.test".to_owned()
        }
    );
}

/// A DNS server that does not answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_dns_is_reported_within_5_s() {
    let dns = DnsResponder::silent();
    let options = ConnectOptions {
        dns_server: Some(dns.address()),
        ..options_for("alice@example.test", None, None)
    };
    let (_client, error, _) = fatal_login(&options).await;
    match &error {
        LoginError::DnsFailed { name, reason } => {
            assert_eq!(name, "_xmpp-client._tcp.example.test");
            assert!(reason.contains("did not answer"), "{reason}");
        }
        other => panic!("expected a DNS failure, got {other:?}"),
    }
    assert!(
        error
            .to_string()
            .starts_with("Cannot look up _xmpp-client._tcp.example.test in DNS: ")
    );
    assert!(
        error
            .to_string()
            .ends_with("Check the network connection and the DNS settings, then try again.")
    );
}

/// DNS says "no XMPP service here" (RFC 6120, 3.2.1), or the domain has
/// neither an SRV record nor an address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_xmpp_service_is_reported() {
    let dns = DnsResponder::start();
    dns.add_srv("_xmpp-client._tcp.mail-only.test", ".", 0);
    dns.add_txt("web-only.test", "v=spf1 -all");
    for domain in ["mail-only.test", "web-only.test"] {
        let options = ConnectOptions {
            dns_server: Some(dns.address()),
            ..options_for(&format!("alice@{domain}"), None, None)
        };
        let (_client, error, _) = fatal_login(&options).await;
        assert_eq!(
            error,
            LoginError::NoXmppService {
                domain: domain.to_owned()
            }
        );
    }
}

/// Nothing listens on the port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_port_is_reported_within_5_s() {
    let port = free_port();
    let (_client, error, took) = fatal_login(&options_for(
        "alice@example.test",
        Some("127.0.0.1"),
        Some(port),
    ))
    .await;
    assert_eq!(
        error,
        LoginError::Unreachable {
            address: format!("127.0.0.1:{port}"),
            reason: ConnectProblem::Refused,
        }
    );
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert_eq!(
        error.to_string(),
        format!(
            "Cannot connect to the XMPP server at 127.0.0.1:{port}: the connection was refused, \
             so nothing listens on that port. Check the host name and port, and that the server \
             is running and reachable from this network."
        )
    );
}

/// A host that never answers (TEST-NET-1, RFC 5737: not routed): the
/// connection times out within the first login's budget, or the network
/// says at once that there is no route (or refuses it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unroutable_host_is_reported_within_5_s() {
    let (_client, error, _) = fatal_login(&options_for(
        "alice@example.test",
        Some("192.0.2.1"),
        Some(5222),
    ))
    .await;
    match error {
        LoginError::Unreachable { address, reason } => {
            assert_eq!(address, "192.0.2.1:5222");
            // Whatever the network says (a sandbox may even refuse it),
            // within the budget.
            eprintln!("192.0.2.1:5222: {reason}");
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
}
