//! A minimal ESession client: log in, start (or accept) an encrypted session,
//! print what happens, and echo every decrypted message back.
//!
//! ```sh
//! ESESSION_JID=alice@localhost ESESSION_PASSWORD=secret \
//!   cargo run -p esession-xmpp --example echo -- [bob@localhost]
//! ```
//! Optional: ESESSION_HOST, ESESSION_PORT, ESESSION_CA_FILE, ESESSION_PLAINTEXT=1 (loopback only).

use esession::{Config, Event, MemoryTrustStore, SessionManager, StanzaKind, SystemRandomness};
use esession_wire::ns;
use esession_xmpp::{
    ClientEvent, ConnectOptions, EsessionClient, SystemClock, TransportSecurity, connect,
};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let env = |k: &str| std::env::var(k).ok();
    let options = ConnectOptions {
        jid: env("ESESSION_JID").ok_or("set ESESSION_JID")?,
        password: env("ESESSION_PASSWORD").ok_or("set ESESSION_PASSWORD")?,
        host: env("ESESSION_HOST"),
        port: env("ESESSION_PORT").and_then(|p| p.parse().ok()),
        security: if env("ESESSION_PLAINTEXT").is_some() {
            TransportSecurity::DangerousPlaintextLoopbackOnly
        } else {
            TransportSecurity::StartTls {
                ca_file: env("ESESSION_CA_FILE").map(Into::into),
            }
        },
        dns_server: None,
    };
    // 1. The sans-IO core, with a CSPRNG seeded from the OS, a trust store and a clock.
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)?;
    // Offer to encrypt presence and iq as well as messages (the default is
    // messages only); a session encrypts what both sides agreed.
    let config = Config {
        stanzas: StanzaKind::ALL.to_vec(),
        ..Config::default()
    };
    let manager = SessionManager::new(
        config,
        Box::new(SystemRandomness::new(ChaCha20Rng::from_seed(seed))),
        Box::new(MemoryTrustStore::new()),
        Box::new(SystemClock),
    )?;
    // 2. The XMPP connection around it.
    let mut client = EsessionClient::new(connect::client(&options)?, manager);
    let contact = std::env::args().nth(1);
    // 3. The event loop.
    while let Some(event) = client.next_event().await {
        match event {
            ClientEvent::Online { jid } => {
                match client.login_info() {
                    Some(login) => println!(
                        "online as {jid} (SASL {}{}, {})",
                        login.mechanism,
                        login
                            .channel_binding
                            .map(|cb| format!(" bound to {cb}"))
                            .unwrap_or_default(),
                        login.tls_version.as_deref().unwrap_or("no TLS"),
                    ),
                    None => println!("online as {jid}"),
                }
                if let Some(contact) = &contact {
                    client.start_session(contact).await?;
                }
            }
            ClientEvent::Session(Event::Established { session, info }) => {
                println!(
                    "encrypted session with {} — compare SAS: {}",
                    session.peer, info.sas
                );
                client
                    .send_text(&session, "hello, this is encrypted")
                    .await?;
            }
            ClientEvent::Session(Event::MessageReceived {
                session, message, ..
            }) => {
                let body = message
                    .get_child("body", ns::JABBER_CLIENT)
                    .map(|b| b.text())
                    .unwrap_or_default();
                println!("{}: {body}", session.peer);
                client.send_text(&session, &format!("echo: {body}")).await?;
            }
            // A decrypted presence or iq. Every iq request must be answered
            // (RFC 6120), encrypted, through `send_stanza`; the client answers
            // pings and disco#info itself, and this example handles no others.
            ClientEvent::Session(Event::StanzaReceived { session, stanza }) => {
                if stanza.name() == "iq" && matches!(stanza.attr("type"), Some("get" | "set")) {
                    client.refuse_iq(&session, &stanza).await?;
                } else {
                    println!("{} (encrypted): {}", session.peer, String::from(&stanza));
                }
            }
            ClientEvent::Disconnected {
                reason,
                fatal: true,
                ..
            } => return Err(reason.into()),
            other => println!("{other:?}"),
        }
    }
    Ok(())
}
