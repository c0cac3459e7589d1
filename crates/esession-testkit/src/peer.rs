//! ESession clients for tests: an encrypted store, a session manager over it,
//! a logged-in [`EsessionClient`], and waiting for its events with timeouts.
//!
//! Each [`Peer`] is driven by its own task (see [`both`]): `EsessionClient::next_event`
//! must keep being polled for the client to answer service discovery and
//! negotiation messages while the other side works.

use std::future::Future;
use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use esession::{
    Config, Event, SessionId, SessionInfo, SessionManager, SystemRandomness, TerminationReason,
    TrustStore,
};
use esession_crypto::SecretBytes;
use esession_store::{KdfParams, Store, Unlock};
use esession_wire::ns;
use esession_xmpp::{
    ClientError, ClientEvent, ConnectOptions, EsessionClient, LoginError, SystemClock, connect,
};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;

/// How long any single expected event may take.
pub const WAIT: Duration = Duration::from_secs(30);

/// The passphrase of every test store.
pub const STORE_PASSPHRASE: &str = "testkit store passphrase";

fn unlock() -> Unlock {
    Unlock::Passphrase(SecretBytes::from_slice(STORE_PASSPHRASE.as_bytes()))
}

/// A new encrypted trust store at `path`, with fast (insecure) Argon2id parameters.
pub fn create_store(path: &Path) -> Store {
    Store::create_with_params(path, unlock(), KdfParams::insecure_fast_for_tests())
        .unwrap_or_else(|e| panic!("cannot create store {}: {e}", path.display()))
}

/// Reopens the store at `path` from disk.
pub fn open_store(path: &Path) -> Store {
    Store::open(path, unlock())
        .unwrap_or_else(|e| panic!("cannot open store {}: {e}", path.display()))
}

/// A session manager with an OS-seeded CSPRNG, `trust` and the system clock.
pub fn manager(trust: Box<dyn TrustStore + Send>, config: Config) -> SessionManager {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).expect("OS RNG");
    SessionManager::new(
        config,
        Box::new(SystemRandomness::new(ChaCha20Rng::from_seed(seed))),
        trust,
        Box::new(SystemClock),
    )
    .expect("a valid test configuration")
}

/// A manager for `account` (bare JID) over `store`.
pub fn store_manager(store: &Store, account: &str, config: Config) -> SessionManager {
    let trust = store
        .account(account)
        .unwrap_or_else(|e| panic!("store account {account}: {e}"));
    manager(Box::new(trust), config)
}

/// 16 random hex digits identifying one test run; put in every plaintext
/// marker so that a search of the server's files cannot match anything else.
pub fn run_token() -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("OS RNG");
    hex::encode(bytes)
}

/// The body of message `i` sent by `side` in run `run`: `msg-a-017-<run>`.
pub fn marker(side: &str, i: usize, run: &str) -> String {
    format!("msg-{side}-{i:03}-{run}")
}

/// The bare part of a JID.
pub fn bare(jid: &str) -> &str {
    jid.split_once('/').map_or(jid, |(b, _)| b)
}

/// Events that mean the test has failed, whatever it is waiting for.
fn alarming(event: &ClientEvent) -> bool {
    // A message without a body (the chat state by which an initiator proves
    // its retained secret at once, issue 10) is expected at any time.
    if let ClientEvent::Session(Event::MessageReceived { message, .. }) = event
        && message.get_child("body", ns::JABBER_CLIENT).is_none()
    {
        return false;
    }
    matches!(
        event,
        ClientEvent::Disconnected { .. }
            | ClientEvent::Session(
                Event::SecurityAlert { .. }
                    | Event::TrustStoreFailure { .. }
                    | Event::ClearStanzaDropped { .. }
                    | Event::UnauthenticatedTerminateRequest { .. }
                    | Event::NegotiationFailed { .. }
                    | Event::MessageReceived { .. }
                    | Event::Terminated {
                        reason: TerminationReason::IntegrityFailure,
                        ..
                    }
            )
    )
}

/// One logged-in ESession client and what it has seen.
pub struct Peer {
    name: String,
    jid: String,
    client: EsessionClient,
    /// Every `RetainedSecretProven` seen, with its `chain_verified`.
    pub retained_proofs: Vec<(SessionId, bool)>,
    /// Events passed over while waiting for something else (for diagnostics).
    pub passed_over: Vec<String>,
}

impl core::fmt::Debug for Peer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Peer")
            .field("name", &self.name)
            .field("jid", &self.jid)
            .finish_non_exhaustive()
    }
}

impl Peer {
    /// Logs in with `options` and waits until online (and its initial presence sent).
    pub async fn login(name: &str, options: &ConnectOptions, manager: SessionManager) -> Self {
        let xmpp = connect::client(options).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut client = EsessionClient::new(xmpp, manager);
        let jid = tokio::time::timeout(WAIT, async {
            loop {
                match client.next_event().await {
                    Some(ClientEvent::Online { jid }) => return jid,
                    Some(ClientEvent::Disconnected { reason, .. }) => {
                        panic!("{name}: login as {} failed: {reason}", options.jid)
                    }
                    Some(_) => {}
                    None => panic!("{name}: connection closed during login"),
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{name}: not online within {WAIT:?}"));
        Self {
            name: name.to_owned(),
            jid,
            client,
            retained_proofs: Vec::new(),
            passed_over: Vec::new(),
        }
    }

    /// Our bound full JID.
    pub fn jid(&self) -> &str {
        &self.jid
    }

    /// The client, for direct calls.
    pub fn client(&mut self) -> &mut EsessionClient {
        &mut self.client
    }

    /// The next event within `within`.
    pub async fn next_event(&mut self, within: Duration) -> Option<ClientEvent> {
        tokio::time::timeout(within, self.client.next_event())
            .await
            .ok()
            .flatten()
    }

    /// Waits for the first event `pick` accepts. Events it passes over are
    /// recorded; an alarming one (disconnection, security alert, failed
    /// negotiation, integrity failure, an unexpected message, ...) fails the test.
    pub async fn wait_for(
        &mut self,
        what: &str,
        within: Duration,
        mut pick: impl FnMut(&ClientEvent) -> bool,
    ) -> ClientEvent {
        let name = self.name.clone();
        let result = tokio::time::timeout(within, async {
            loop {
                let Some(event) = self.client.next_event().await else {
                    panic!("{name}: connection closed while waiting for {what}");
                };
                if pick(&event) {
                    return event;
                }
                if let ClientEvent::Session(Event::RetainedSecretProven {
                    session,
                    chain_verified,
                }) = &event
                {
                    self.retained_proofs
                        .push((session.clone(), *chain_verified));
                }
                assert!(
                    !alarming(&event),
                    "{name}: {event:?} while waiting for {what} (passed over before: {:?})",
                    self.passed_over
                );
                self.passed_over.push(format!("{event:?}"));
            }
        })
        .await;
        result.unwrap_or_else(|_| {
            panic!(
                "{}: no {what} within {within:?} (passed over: {:?})",
                self.name, self.passed_over
            )
        })
    }

    /// Waits until a session is established (either side); returns it.
    pub async fn established(&mut self) -> (SessionId, SessionInfo) {
        match self
            .wait_for("an established session", WAIT, |e| {
                matches!(e, ClientEvent::Session(Event::Established { .. }))
            })
            .await
        {
            ClientEvent::Session(Event::Established { session, info }) => (session, info),
            other => panic!("{}: picked {other:?}", self.name),
        }
    }

    /// Offers a session to `contact` and waits until it is established.
    pub async fn start(&mut self, contact: &str) -> (SessionId, SessionInfo) {
        let offered = self
            .client
            .start_session(contact)
            .await
            .unwrap_or_else(|e| panic!("{}: start_session({contact}): {e}", self.name));
        let (session, info) = self.established().await;
        assert_eq!(session.thread, offered.thread, "{}: thread", self.name);
        assert!(info.we_initiated);
        (session, info)
    }

    /// Sends each of `bodies` as an encrypted chat message.
    pub async fn send_texts(&mut self, session: &SessionId, bodies: &[String]) {
        for body in bodies {
            self.client
                .send_text(session, body)
                .await
                .unwrap_or_else(|e| panic!("{}: send_text: {e}", self.name));
        }
    }

    /// Receives `n` decrypted messages in `session`; returns their bodies in order.
    pub async fn receive_texts(&mut self, session: &SessionId, n: usize) -> Vec<String> {
        let mut bodies = Vec::with_capacity(n);
        while bodies.len() < n {
            let what = format!("message {} of {n}", bodies.len() + 1);
            // Messages without a body (the initiator's chat state proving its
            // retained secret, issue 10) are not part of the conversation.
            match self
                .wait_for(&what, WAIT, |e| {
                    matches!(e, ClientEvent::Session(Event::MessageReceived { message, .. })
                        if message.get_child("body", ns::JABBER_CLIENT).is_some())
                })
                .await
            {
                ClientEvent::Session(Event::MessageReceived {
                    session: s,
                    message,
                    ..
                }) => {
                    assert_eq!(&s, session, "{}: message in another session", self.name);
                    let body = message
                        .get_child("body", ns::JABBER_CLIENT)
                        .map(|b| b.text())
                        .unwrap_or_else(|| panic!("{}: message without a body", self.name));
                    bodies.push(body);
                }
                other => panic!("{}: picked {other:?}", self.name),
            }
        }
        bodies
    }

    /// Waits until `session` has terminated; returns why.
    pub async fn terminated(&mut self, session: &SessionId) -> TerminationReason {
        let wanted = session.clone();
        match self
            .wait_for("termination", WAIT, |e| {
                matches!(e, ClientEvent::Session(Event::Terminated { session, .. }) if *session == wanted)
            })
            .await
        {
            ClientEvent::Session(Event::Terminated { reason, .. }) => reason,
            other => panic!("{}: picked {other:?}", self.name),
        }
    }

    /// Waits for a failed negotiation (within `within`); returns the session and error.
    pub async fn negotiation_failed(&mut self, within: Duration) -> (SessionId, esession::Error) {
        match self
            .wait_for("a failed negotiation", within, |e| {
                matches!(e, ClientEvent::Session(Event::NegotiationFailed { .. }))
            })
            .await
        {
            ClientEvent::Session(Event::NegotiationFailed { session, error }) => (session, error),
            other => panic!("{}: picked {other:?}", self.name),
        }
    }

    /// Waits for a message outside any ESession; returns (from, body).
    pub async fn plain_message(&mut self) -> (String, String) {
        match self
            .wait_for("a plain message", WAIT, |e| {
                matches!(e, ClientEvent::PlainMessage { .. })
            })
            .await
        {
            ClientEvent::PlainMessage { from, body } => (from, body),
            other => panic!("{}: picked {other:?}", self.name),
        }
    }

    /// Keeps the client polled for `duration` (answering discovery, receiving
    /// whatever arrives); fails on anything alarming.
    pub async fn idle(&mut self, duration: Duration) {
        let deadline = tokio::time::Instant::now() + duration;
        while let Ok(event) = tokio::time::timeout_at(deadline, self.client.next_event()).await {
            let Some(event) = event else {
                panic!("{}: connection closed", self.name)
            };
            assert!(!alarming(&event), "{}: {event:?} while idle", self.name);
            self.passed_over.push(format!("{event:?}"));
        }
    }

    /// Ends its ESessions (ESN-45), sends unavailable presence and closes the stream.
    pub async fn disconnect(self) {
        self.client.disconnect().await;
    }

    /// Loses the connection abruptly, as a crashed client or a dead network
    /// would: no terminate form, no unavailable presence from the client.
    pub async fn vanish(self) {
        drop(self.client);
        tokio::task::yield_now().await;
    }
}

/// What [`conversation`] observed.
#[derive(Debug)]
pub struct Conversation {
    /// Alice's view of the session (she initiated it).
    pub alice_info: SessionInfo,
    /// Bob's view when it was established.
    pub bob_info: SessionInfo,
    /// Bob's view after all of Alice's messages arrived (the responder's
    /// `authenticated_by_retained_secret` becomes true once proven).
    pub bob_info_after: SessionInfo,
    /// Bob saw `RetainedSecretProven` for this session.
    pub bob_proven: bool,
    /// Every body sent, both directions (to look for on the server).
    pub bodies: Vec<String>,
    /// From Alice's offer to both sides having terminated.
    pub elapsed: Duration,
}

/// Runs `a` and `b` as two tasks and returns both results. If either
/// panics, the other is aborted and the panic is resumed here.
pub async fn both<A, B>(
    a: impl Future<Output = A> + Send + 'static,
    b: impl Future<Output = B> + Send + 'static,
) -> (A, B)
where
    A: Send + 'static,
    B: Send + 'static,
{
    let (mut ha, mut hb) = (tokio::spawn(a), tokio::spawn(b));
    let (mut ra, mut rb) = (None, None);
    while ra.is_none() || rb.is_none() {
        tokio::select! {
            r = &mut ha, if ra.is_none() => match r {
                Ok(v) => ra = Some(v),
                Err(e) => {
                    hb.abort();
                    std::panic::resume_unwind(e.into_panic());
                }
            },
            r = &mut hb, if rb.is_none() => match r {
                Ok(v) => rb = Some(v),
                Err(e) => {
                    ha.abort();
                    std::panic::resume_unwind(e.into_panic());
                }
            },
        }
    }
    (ra.expect("set"), rb.expect("set"))
}

/// Alice offers a session to Bob's full JID; once established each side
/// sends `n` encrypted messages (`msg-a-000-<run>`, `msg-b-000-<run>`, ...),
/// receives the other's `n` and checks every body and their order; Alice
/// then terminates and both see the termination acknowledged. Both SAS must
/// match. Returns the peers for further use.
pub async fn conversation(
    mut alice: Peer,
    mut bob: Peer,
    n: usize,
    run: &str,
) -> (Peer, Peer, Conversation) {
    let started = std::time::Instant::now();
    let alice_full = alice.jid().to_owned();
    let bob_full = bob.jid().to_owned();
    let a_bodies: Vec<String> = (0..n).map(|i| marker("a", i, run)).collect();
    let b_bodies: Vec<String> = (0..n).map(|i| marker("b", i, run)).collect();
    let (a_send, a_expect) = (a_bodies.clone(), b_bodies.clone());
    let (b_send, b_expect) = (b_bodies.clone(), a_bodies.clone());
    let alice_side = async move {
        let (session, info) = alice.start(&bob_full).await;
        assert_eq!(
            session.peer.as_str(),
            bob_full,
            "alice: session bound to bob's full JID"
        );
        alice.send_texts(&session, &a_send).await;
        let got = alice.receive_texts(&session, a_expect.len()).await;
        assert_eq!(got, a_expect, "alice: bodies received from bob");
        alice.client().terminate(&session).await.expect("terminate");
        assert_eq!(
            alice.terminated(&session).await,
            TerminationReason::LocalRequest,
            "alice: terminate acknowledged"
        );
        (alice, info)
    };
    let bob_side = async move {
        let (session, info) = bob.established().await;
        assert_eq!(
            session.peer.as_str(),
            alice_full,
            "bob: session with alice's full JID"
        );
        assert!(!info.we_initiated);
        bob.send_texts(&session, &b_send).await;
        let got = bob.receive_texts(&session, b_expect.len()).await;
        assert_eq!(got, b_expect, "bob: bodies received from alice");
        let after = bob
            .client()
            .manager()
            .session_info(&session)
            .cloned()
            .expect("bob: session still established");
        let proven = bob.retained_proofs.iter().any(|(s, _)| *s == session);
        assert_eq!(
            bob.terminated(&session).await,
            TerminationReason::PeerRequest,
            "bob: alice's terminate"
        );
        (bob, info, after, proven)
    };
    let ((alice, alice_info), (bob, bob_info, bob_info_after, bob_proven)) =
        both(alice_side, bob_side).await;
    assert_eq!(alice_info.sas, bob_info.sas, "both sides show the same SAS");
    let mut bodies = a_bodies;
    bodies.extend(b_bodies);
    (
        alice,
        bob,
        Conversation {
            alice_info,
            bob_info,
            bob_info_after,
            bob_proven,
            bodies,
            elapsed: started.elapsed(),
        },
    )
}

/// How long a login that cannot succeed may take to be reported: the first
/// attempt's DNS and connection time budget, with room to spare.
pub const FATAL_LOGIN_WITHIN: Duration = Duration::from_secs(5);

/// Logs in with `options`, expecting it to fail for good: a fatal
/// `Disconnected` carrying a `LoginError` within [`FATAL_LOGIN_WITHIN`],
/// whose `reason` is the error's message. Then checks what the client does
/// after it: no more events, nothing can be sent, nothing blocks. Returns
/// the ended client (keep it alive to show that it does not retry), the
/// error and how long it took.
pub async fn fatal_login(options: &ConnectOptions) -> (EsessionClient, LoginError, Duration) {
    let mut client = EsessionClient::new(
        connect::client(options).unwrap_or_else(|e| panic!("{}: {e}", options.jid)),
        manager(
            Box::new(esession::MemoryTrustStore::new()),
            Config::default(),
        ),
    );
    let started = std::time::Instant::now();
    let event = tokio::time::timeout(Duration::from_secs(10), client.next_event())
        .await
        .unwrap_or_else(|_| panic!("{}: no fatal login error within 10 s", options.jid));
    let error = match event {
        Some(ClientEvent::Disconnected {
            reason,
            fatal: true,
            login_error: Some(error),
            ..
        }) => {
            assert_eq!(reason, error.to_string());
            error
        }
        other => panic!(
            "{}: expected a fatal login error, got {other:?}",
            options.jid
        ),
    };
    let took = started.elapsed();
    let _ = writeln!(
        std::io::stderr(),
        "{}: {error} (after {took:?})",
        options.jid
    );
    assert!(
        took < FATAL_LOGIN_WITHIN,
        "{}: reported after {took:?}: {error}",
        options.jid
    );
    assert_eq!(client.login_error(), Some(&error));
    // The client has ended: no further events, at once.
    let after = tokio::time::timeout(Duration::from_secs(1), client.next_event())
        .await
        .expect("next_event returns at once after a fatal login error");
    assert!(after.is_none(), "after the fatal error: {after:?}");
    // Nothing can be sent; nothing blocks.
    assert!(matches!(
        client.send_plain("bob@localhost", "hello").await,
        Err(ClientError::LoginFailed(e)) if e == error
    ));
    assert!(matches!(
        client.start_session("bob@localhost/r").await,
        Err(ClientError::LoginFailed(e)) if e == error
    ));
    (client, error, took)
}
