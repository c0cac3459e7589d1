//! Issue 12, "bring your own stream": an application that drives its own
//! tokio-xmpp `StanzaStream` adds ESessions with [`Esessions::embedded`], and
//! talks to one of our whole clients through a real Prosody on loopback.
//!
//! - `an_application_with_its_own_stream_negotiates_and_keeps_its_stanzas`:
//!   the application's layer offers a session to Bob (our `EsessionClient`),
//!   both establish it, an encrypted message goes each way; Bob's plain
//!   message and presence are handed back to the application as stanzas
//!   (never as layer events), and the application answers Bob's disco#info
//!   itself with our features, so Bob's own offer to it is accepted too.
//!
//! Without Prosody the test prints a loud SKIPPED banner and passes, unless
//! `ESESSION_REQUIRE_PROSODY=1`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::time::Duration;

use esession::{Config, Event, MemoryTrustStore, SessionId};
use esession_testkit::peer::{Peer, manager};
use esession_testkit::{Archive, prosody_or_skip};
use esession_xmpp::{ClientEvent, Esessions, connect, disco};
use futures::StreamExt;
use tokio_xmpp::Stanza;
use tokio_xmpp::parsers::disco::DiscoInfoQuery;
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::stanzastream::StanzaStream;

const WAIT: Duration = Duration::from_secs(20);

/// The application: its own stream, the ESession layer, and what the layer
/// handed back to it.
struct App {
    stream: StanzaStream,
    layer: Esessions,
    tick: tokio::time::Interval,
    /// Stanzas the layer did not keep, in order.
    own_stanzas: Vec<Stanza>,
    events: Vec<ClientEvent>,
    /// Stanzas of the application's own to send (its disco#info answers).
    replies: Vec<Stanza>,
    /// The application answered a disco#info query.
    answered_disco: bool,
}

impl App {
    /// One round of the application's loop, as in the layer's doctest.
    async fn step(&mut self) {
        tokio::select! {
            Some(item) = self.stream.next() => {
                if let Some(stanza) = self.layer.handle_stream_event(item) {
                    self.answer_disco(&stanza);
                    self.own_stanzas.push(stanza);
                }
            }
            _ = self.tick.tick() => self.layer.poll_timers(),
        }
        while let Some(event) = self.layer.next_event() {
            self.events.push(event);
        }
        for stanza in self.layer.take_outgoing() {
            let _token = self.stream.send(Box::new(stanza)).await;
        }
        for stanza in std::mem::take(&mut self.replies) {
            let _token = self.stream.send(Box::new(stanza)).await;
        }
    }

    /// The application answers disco#info itself, listing our features
    /// (`disco::our_disco_info`) among its own.
    fn answer_disco(&mut self, stanza: &Stanza) {
        if let Stanza::Iq(Iq::Get {
            id, from, payload, ..
        }) = stanza
            && DiscoInfoQuery::try_from(payload.clone()).is_ok()
        {
            let mut result = Iq::from_result(id.clone(), Some(disco::our_disco_info(None)));
            if let Iq::Result { to, .. } = &mut result {
                to.clone_from(from);
            }
            self.replies.push(result.into());
            self.answered_disco = true;
        }
    }

    /// Runs the loop until `done` holds for the events so far.
    async fn until(&mut self, what: &str, done: impl Fn(&[ClientEvent]) -> bool) {
        tokio::time::timeout(WAIT, async {
            while !done(&self.events) {
                self.step().await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no {what} within {WAIT:?}: {:?}", self.events));
    }

    /// Runs the loop until a stanza the layer handed back satisfies `pick`.
    async fn until_own(&mut self, what: &str, pick: impl Fn(&Stanza) -> bool) {
        tokio::time::timeout(WAIT, async {
            while !self.own_stanzas.iter().any(&pick) {
                self.step().await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no {what} within {WAIT:?}"));
    }
}

fn established(events: &[ClientEvent]) -> Option<SessionId> {
    events.iter().find_map(|e| match e {
        ClientEvent::Session(Event::Established { session, .. }) => Some(session.clone()),
        _ => None,
    })
}

fn body_of(stanza: &Stanza) -> Option<String> {
    match stanza {
        Stanza::Message(m) => m.bodies.values().next().cloned(),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_application_with_its_own_stream_negotiates_and_keeps_its_stanzas() {
    let Some(prosody) =
        prosody_or_skip("an_application_with_its_own_stream_negotiates_and_keeps_its_stanzas")
    else {
        return;
    };
    let server = prosody.server("localhost", Archive::Off);
    server.register("alice", "alice-pw");
    server.register("bob", "bob-pw");
    server.befriend("alice", "bob");
    let mut bob = Peer::login(
        "bob",
        &server.connect_options("bob", "phone", "bob-pw"),
        manager(Box::new(MemoryTrustStore::new()), Config::default()),
    )
    .await;
    let bob_jid = bob.jid().to_owned();

    // The application's own stream (any StanzaStream would do).
    let stream = connect::client(&server.connect_options("alice", "app", "alice-pw"))
        .unwrap()
        .into_stream();
    let mut app = App {
        stream,
        layer: Esessions::embedded(manager(
            Box::new(MemoryTrustStore::new()),
            Config::default(),
        )),
        tick: tokio::time::interval(Duration::from_secs(1)),
        own_stanzas: Vec::new(),
        events: Vec::new(),
        replies: Vec::new(),
        answered_disco: false,
    };
    app.until("login", |events| {
        events
            .iter()
            .any(|e| matches!(e, ClientEvent::Online { .. }))
    })
    .await;
    // The application announces itself (the layer does not, embedded).
    app.replies.push(
        tokio_xmpp::parsers::presence::Presence::new(tokio_xmpp::parsers::presence::Type::None)
            .into(),
    );
    let alice_jid = app.layer.own_jid().unwrap().to_owned();

    // The application's offer to Bob.
    let offered = app.layer.start_session(&bob_jid).unwrap();
    let (bob_session, _) = tokio::join!(
        async { bob.established().await },
        app.until("an established session", |events| {
            established(events).is_some()
        }),
    )
    .0;
    let alice_session = established(&app.events).unwrap();
    assert_eq!(alice_session.thread, offered.thread);
    assert_eq!(bob_session.thread, offered.thread);

    // An encrypted message each way.
    app.layer
        .send_text(&alice_session, "hello from an embedded layer")
        .unwrap();
    app.step().await;
    let received = tokio::join!(bob.receive_texts(&bob_session, 1), async {
        for _ in 0..3 {
            tokio::time::timeout(Duration::from_millis(200), app.step())
                .await
                .ok();
        }
    })
    .0;
    assert_eq!(received, ["hello from an embedded layer"]);
    bob.client()
        .send_text(&bob_session, "hello back, encrypted")
        .await
        .unwrap();
    app.until("bob's encrypted message", |events| {
        events.iter().any(|e| {
            matches!(e, ClientEvent::Session(Event::MessageReceived { message, .. })
                if message.children().any(|c| c.name() == "body" && c.text() == "hello back, encrypted"))
        })
    })
    .await;

    // Bob's plain message is the application's: handed back, not an event.
    bob.client()
        .send_plain(&alice_jid, "a plain hello")
        .await
        .unwrap();
    app.until_own("bob's plain message", |s| {
        body_of(s).as_deref() == Some("a plain hello")
    })
    .await;
    assert!(
        !app.events
            .iter()
            .any(|e| matches!(e, ClientEvent::PlainMessage { .. })),
        "embedded: plain messages are stanzas for the application, not events"
    );
    assert!(
        app.own_stanzas
            .iter()
            .any(|s| matches!(s, Stanza::Presence(p) if p.from.as_ref().map(ToString::to_string).as_deref() == Some(bob_jid.as_str()))),
        "bob's presence is handed back too"
    );
    // Nothing encrypted was handed back.
    for stanza in &app.own_stanzas {
        let element = tokio_xmpp::minidom::Element::from(match stanza {
            Stanza::Message(m) => Stanza::Message(m.clone()),
            Stanza::Iq(iq) => Stanza::Iq(iq.clone()),
            Stanza::Presence(p) => Stanza::Presence(p.clone()),
        });
        assert!(
            !element
                .children()
                .any(|c| c.is("c", esession_wire::ns::STANZA_ENCRYPTION)),
            "an encrypted stanza reached the application"
        );
    }

    // Bob's own offer: his client asks the application's disco#info first,
    // which the application answers with our features.
    let bob_start = {
        let target = alice_jid.clone();
        async move {
            let started = bob.start(&target).await;
            (bob, started)
        }
    };
    let before = app
        .events
        .iter()
        .filter(|e| matches!(e, ClientEvent::Session(Event::Established { .. })))
        .count();
    let ((bob, (second, _)), ()) = tokio::join!(
        bob_start,
        app.until("bob's session", move |events| {
            events
                .iter()
                .filter(|e| matches!(e, ClientEvent::Session(Event::Established { .. })))
                .count()
                > before
        }),
    );
    assert!(
        app.answered_disco,
        "bob asked, and the application answered"
    );
    assert_ne!(second.thread, offered.thread);
    bob.disconnect().await;
}
