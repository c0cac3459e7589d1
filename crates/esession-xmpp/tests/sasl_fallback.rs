//! SASL paths no real server here takes, against a scripted fake server on
//! loopback (plaintext, so the script can read the client's bytes):
//!
//! - `next_mechanism_on_a_new_connection`: the server refuses SCRAM-SHA-1
//!   with `invalid-mechanism` and closes the stream (RFC 6120, 6.4.5 lets
//!   it); the client opens a new connection and goes on with the next
//!   mechanism (PLAIN), not SCRAM-SHA-1 again, and reports both.
//! - `server_without_the_password_is_stopped`: the server answers the SCRAM
//!   proof with `<success/>` but a wrong server signature: the login stops
//!   with `ServerNotAuthenticated`, and PLAIN (which would hand it the
//!   password) is never tried.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use esession::{Config, MemoryTrustStore};
use esession_testkit::peer::{Peer, fatal_login, manager};
use esession_xmpp::{ConnectOptions, LoginError, TransportSecurity};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
     xmlns:stream='http://etherx.jabber.org/streams' id='fake' from='fake.test' version='1.0'>";
const SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";

/// One client connection, read as text.
struct Conn {
    stream: TcpStream,
    buffer: String,
}

impl Conn {
    /// Reads until `done` finds something in what was not consumed yet;
    /// consumes up to the end of the match and returns the consumed text.
    async fn until(&mut self, done: impl Fn(&str) -> Option<usize>) -> String {
        loop {
            if let Some(end) = done(&self.buffer) {
                return self.buffer.drain(..end).collect();
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).await.unwrap();
            assert!(
                n > 0,
                "the client closed the connection; unread: {}",
                self.buffer
            );
            self.buffer.push_str(&String::from_utf8_lossy(&chunk[..n]));
        }
    }

    /// The client's stream header.
    async fn header(&mut self) {
        self.until(|b| {
            let start = b.find("<stream:stream")?;
            b[start..].find('>').map(|i| start + i + 1)
        })
        .await;
    }

    /// The next top-level element named `name` (with text or empty).
    async fn element(&mut self, name: &str) -> String {
        let close = format!("</{name}>");
        let open = format!("<{name}");
        self.until(|b| {
            let start = b.find(&open)?;
            let rest = &b[start..];
            let tag_end = rest.find('>')?;
            if rest[..tag_end].ends_with('/') {
                return Some(start + tag_end + 1);
            }
            rest.find(&close).map(|i| start + i + close.len())
        })
        .await
    }

    async fn send(&mut self, text: &str) {
        self.stream.write_all(text.as_bytes()).await.unwrap();
    }
}

fn attribute(element: &str, name: &str) -> String {
    for quote in ['\'', '"'] {
        let key = format!("{name}={quote}");
        if let Some(start) = element.find(&key) {
            let rest = &element[start + key.len()..];
            return rest[..rest.find(quote).unwrap()].to_owned();
        }
    }
    panic!("no {name} in {element}");
}

fn text_of(element: &str) -> Vec<u8> {
    let start = element.find('>').unwrap() + 1;
    let end = element.rfind("</").unwrap_or(start);
    let text = element[start..end].trim();
    if text.is_empty() || text == "=" {
        Vec::new()
    } else {
        BASE64.decode(text).unwrap()
    }
}

fn features(mechanisms: &[&str]) -> String {
    let list: String = mechanisms
        .iter()
        .map(|m| format!("<mechanism>{m}</mechanism>"))
        .collect();
    format!("<stream:features><mechanisms xmlns='{SASL}'>{list}</mechanisms></stream:features>")
}

/// After `<success/>`: the restarted stream, resource binding, then idle.
async fn bind(mut conn: Conn) {
    conn.header().await;
    conn.send(&format!(
        "{HEADER}<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>"
    ))
    .await;
    let iq = conn.element("iq").await;
    let id = attribute(&iq, "id");
    conn.send(&format!(
        "<iq type='result' id='{id}'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
         <jid>alice@fake.test/r</jid></bind></iq>"
    ))
    .await;
    // Whatever the client sends next (presence, roster, disco) stays unanswered.
    let mut sink = [0u8; 4096];
    while conn.stream.read(&mut sink).await.is_ok_and(|n| n > 0) {}
}

fn options(port: u16) -> ConnectOptions {
    ConnectOptions {
        jid: "alice@fake.test/r".to_owned(),
        password: "alice-pw".to_owned(),
        host: Some("127.0.0.1".to_owned()),
        port: Some(port),
        security: TransportSecurity::DangerousPlaintextLoopbackOnly,
        dns_server: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_mechanism_on_a_new_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let server = {
        let seen = seen.clone();
        tokio::spawn(async move {
            // First connection: SCRAM-SHA-1 refused, then the stream closed.
            let (stream, _) = listener.accept().await.unwrap();
            let mut conn = Conn {
                stream,
                buffer: String::new(),
            };
            conn.header().await;
            conn.send(&format!("{HEADER}{}", features(&["PLAIN", "SCRAM-SHA-1"])))
                .await;
            let auth = conn.element("auth").await;
            seen.lock().unwrap().push(attribute(&auth, "mechanism"));
            conn.send(&format!(
                "<failure xmlns='{SASL}'><invalid-mechanism/><text>not today</text></failure>\
                 </stream:stream>"
            ))
            .await;
            drop(conn);
            // Second connection: PLAIN (not SCRAM-SHA-1 again) succeeds.
            let (stream, _) = listener.accept().await.unwrap();
            let mut conn = Conn {
                stream,
                buffer: String::new(),
            };
            conn.header().await;
            conn.send(&format!("{HEADER}{}", features(&["PLAIN", "SCRAM-SHA-1"])))
                .await;
            let auth = conn.element("auth").await;
            seen.lock().unwrap().push(attribute(&auth, "mechanism"));
            assert_eq!(text_of(&auth), b"\0alice\0alice-pw");
            conn.send(&format!("<success xmlns='{SASL}'/>")).await;
            bind(conn).await;
        })
    };
    let mut peer = Peer::login(
        "alice",
        &options(port),
        manager(Box::new(MemoryTrustStore::new()), Config::default()),
    )
    .await;
    let info = peer.client().login_info().unwrap();
    assert_eq!(info.mechanism, "PLAIN");
    assert_eq!(info.tls_version, None);
    assert_eq!(info.earlier_failures.len(), 1, "{info:?}");
    assert_eq!(info.earlier_failures[0].mechanism, "SCRAM-SHA-1");
    assert!(
        info.earlier_failures[0]
            .reason
            .contains("invalid-mechanism")
            && info.earlier_failures[0].reason.contains("not today"),
        "{info:?}"
    );
    assert_eq!(*seen.lock().unwrap(), ["SCRAM-SHA-1", "PLAIN"]);
    drop(peer);
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_without_the_password_is_stopped() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let server = {
        let seen = seen.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let mut conn = Conn {
                    stream,
                    buffer: String::new(),
                };
                conn.header().await;
                conn.send(&format!("{HEADER}{}", features(&["PLAIN", "SCRAM-SHA-1"])))
                    .await;
                let auth = conn.element("auth").await;
                seen.lock().unwrap().push(attribute(&auth, "mechanism"));
                if attribute(&auth, "mechanism") != "SCRAM-SHA-1" {
                    continue;
                }
                // Plaintext: no binding, gs2 flag "n".
                let first = String::from_utf8(text_of(&auth)).unwrap();
                assert!(first.starts_with("n,,n=alice,r="), "{first}");
                let nonce = &first["n,,n=alice,r=".len()..];
                let challenge = format!("r={nonce}server,s=QSXCR+Q6sek8bf92,i=4096");
                conn.send(&format!(
                    "<challenge xmlns='{SASL}'>{}</challenge>",
                    BASE64.encode(&challenge)
                ))
                .await;
                conn.element("response").await;
                // A server that does not know the password cannot sign.
                conn.send(&format!(
                    "<success xmlns='{SASL}'>{}</success>",
                    BASE64.encode("v=rmF9pqV8S7suAoZWja4dJRkFsKQ=")
                ))
                .await;
                // Keep the connection until the client leaves.
                let mut sink = [0u8; 1024];
                while conn.stream.read(&mut sink).await.is_ok_and(|n| n > 0) {}
            }
        })
    };
    let (client, error, _) = fatal_login(&options(port)).await;
    assert_eq!(
        error,
        LoginError::ServerNotAuthenticated {
            mechanism: "SCRAM-SHA-1".to_owned()
        }
    );
    // Long enough for a retry or a PLAIN attempt, if there were one.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(*seen.lock().unwrap(), ["SCRAM-SHA-1"]);
    drop(client);
    server.abort();
}
