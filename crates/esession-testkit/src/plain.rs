//! XMPP clients without ESessions, over the raw tokio-xmpp stream (no
//! adapter): a contact whose client does not support XEP-0116 (or claims to
//! and stays silent), and the building blocks of raw protocol tests.

use std::time::Duration;

use esession_wire::minidom::Element;
use esession_xmpp::{ConnectOptions, connect};
use futures::StreamExt;
use tokio_xmpp::Stanza;
use tokio_xmpp::parsers::disco::{DiscoInfoResult, Identity};
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::presence::{Presence, Type as PresenceType};
use tokio_xmpp::parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};
use tokio_xmpp::stanzastream::{Event as StreamItem, StanzaStream, StreamEvent};

/// Logs a raw tokio-xmpp stream (no ESession adapter) in and waits until online.
pub async fn raw_login(options: &ConnectOptions) -> StanzaStream {
    let mut stream = connect::client(options).unwrap().into_stream();
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match stream.next().await {
                Some(StreamItem::Stream(StreamEvent::Reset { .. })) => return,
                Some(_) => {}
                None => panic!("raw login: closed"),
            }
        }
    })
    .await
    .expect("raw client online");
    stream
}

/// Sends one stanza on a raw stream.
pub async fn raw_send(stream: &StanzaStream, stanza: impl Into<Stanza>) {
    let _token = stream.send(Box::new(stanza.into())).await;
}

/// Queries `options`' MAM archive (XEP-0313) over XMPP; returns every archived
/// `<message/>` (the forwarded copy) serialised. Panics unless the whole
/// archive came in one page.
pub async fn mam_query(options: &ConnectOptions) -> Vec<String> {
    let mut stream = raw_login(options).await;
    let query: Element = "<query xmlns='urn:xmpp:mam:2' queryid='everything'>\
           <set xmlns='http://jabber.org/protocol/rsm'><max>1000</max></set></query>"
        .parse()
        .unwrap();
    let id = "mam-query-1".to_owned();
    raw_send(
        &stream,
        Iq::Set {
            from: None,
            to: None,
            id: id.clone(),
            payload: query,
        },
    )
    .await;
    // The results arrive as messages, then the IQ result (<fin/>) on the same stream.
    let mut messages = Vec::new();
    let fin = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match stream.next().await {
                Some(StreamItem::Stanza(Stanza::Message(message))) => {
                    let element = Element::from(message);
                    if let Some(forwarded) = element
                        .get_child("result", "urn:xmpp:mam:2")
                        .and_then(|r| r.get_child("forwarded", "urn:xmpp:forward:0"))
                        .and_then(|f| f.get_child("message", esession_wire::ns::JABBER_CLIENT))
                    {
                        messages.push(String::from(forwarded));
                    }
                }
                Some(StreamItem::Stanza(Stanza::Iq(Iq::Result {
                    id: answered,
                    payload: Some(fin),
                    ..
                }))) if answered == id => return fin,
                Some(StreamItem::Stanza(Stanza::Iq(other))) => panic!("MAM query: {other:?}"),
                Some(_) => {}
                None => panic!("MAM reader: connection closed"),
            }
        }
    })
    .await
    .expect("MAM query answered");
    assert!(fin.is("fin", "urn:xmpp:mam:2"), "MAM answer: {fin:?}");
    assert_eq!(
        fin.attr("complete"),
        Some("true"),
        "the MAM query must return the whole archive in one page"
    );
    let total: usize = fin
        .get_child("set", "http://jabber.org/protocol/rsm")
        .and_then(|set| set.get_child("count", "http://jabber.org/protocol/rsm"))
        .and_then(|count| count.text().parse().ok())
        .expect("RSM count in <fin/>");
    assert_eq!(messages.len(), total, "every archived message was returned");
    stream.close().await;
    messages
}

/// Reads `options`' MAM preferences (XEP-0313) over XMPP: the `<prefs/>` element.
pub async fn mam_prefs(options: &ConnectOptions) -> Element {
    let stream = raw_login(options).await;
    let id = "mam-prefs-1".to_owned();
    raw_send(
        &stream,
        Iq::Get {
            from: None,
            to: None,
            id: id.clone(),
            payload: Element::bare("prefs", "urn:xmpp:mam:2"),
        },
    )
    .await;
    let prefs = answer(stream, &id).await;
    prefs.expect("MAM preferences in the answer")
}

/// Writes `options`' MAM preferences: `prefs` is the `<prefs/>` element.
pub async fn set_mam_prefs(options: &ConnectOptions, prefs: Element) {
    let stream = raw_login(options).await;
    let id = "mam-prefs-set-1".to_owned();
    raw_send(
        &stream,
        Iq::Set {
            from: None,
            to: None,
            id: id.clone(),
            payload: prefs,
        },
    )
    .await;
    answer(stream, &id).await;
}

/// Waits for the result of iq `id` on `stream` (panics on an error or after
/// 20 s) and closes the stream: the result's payload.
async fn answer(mut stream: StanzaStream, id: &str) -> Option<Element> {
    let payload = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match stream.next().await {
                Some(StreamItem::Stanza(Stanza::Iq(Iq::Result {
                    id: answered,
                    payload,
                    ..
                }))) if answered == id => return payload,
                Some(StreamItem::Stanza(Stanza::Iq(Iq::Error {
                    id: answered,
                    error,
                    ..
                }))) if answered == id => panic!("iq {id}: {error:?}"),
                Some(_) => {}
                None => panic!("iq {id}: connection closed"),
            }
        }
    })
    .await
    .expect("iq answered");
    stream.close().await;
    payload
}

/// A contact online with a plain client: it announces presence, answers
/// disco#info with `features` (service-unavailable to any other query), and
/// passes every message it receives to `seen`; an `online` element in the
/// `test` namespace first. Returns the stream when told to stop.
pub async fn plain_contact(
    options: ConnectOptions,
    features: &'static [&'static str],
    seen: tokio::sync::mpsc::UnboundedSender<Element>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> StanzaStream {
    let mut stream = raw_login(&options).await;
    raw_send(&stream, Presence::new(PresenceType::None)).await;
    let _ = seen.send(Element::builder("online", "test").build());
    loop {
        tokio::select! {
            _ = &mut stop => return stream,
            item = stream.next() => match item {
                Some(StreamItem::Stanza(Stanza::Iq(Iq::Get { from, id, payload, .. }))) => {
                    let reply = if payload.is("query", "http://jabber.org/protocol/disco#info") {
                        Iq::Result {
                            from: None,
                            to: from,
                            id,
                            payload: Some(DiscoInfoResult {
                                node: None,
                                identities: vec![Identity::new("client", "pc", "en", "plain")],
                                features: features.iter().map(|f| (*f).to_owned()).collect(),
                                extensions: Vec::new(),
                            }.into()),
                        }
                    } else {
                        Iq::Error {
                            from: None,
                            to: from,
                            id,
                            error: StanzaError::new(
                                ErrorType::Cancel, DefinedCondition::ServiceUnavailable, "en", ""),
                            payload: None,
                        }
                    };
                    raw_send(&stream, reply).await;
                }
                Some(StreamItem::Stanza(Stanza::Message(message))) => {
                    let _ = seen.send(Element::from(message));
                }
                Some(_) => {}
                None => return stream,
            },
        }
    }
}

/// disco#info features of a client without ESessions.
pub const NO_ESESSIONS: &[&str] = &["http://jabber.org/protocol/disco#info", "urn:xmpp:ping"];

/// disco#info features of a client that claims ESessions (XEP-0155, 0116,
/// 0200) but never answers an offer.
pub const SILENT_ESESSIONS: &[&str] = &[
    "http://jabber.org/protocol/disco#info",
    esession_wire::ns::SSN,
    esession_wire::ns::ESESSION,
    esession_wire::ns::STANZA_ENCRYPTION,
];

/// A [`plain_contact`] on its own thread and runtime (for synchronous tests,
/// such as the CLI's); it goes offline when dropped.
pub struct PlainContact {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PlainContact {
    /// Logs in with `options`, answering disco#info with `features`; returns once online.
    pub fn online(options: ConnectOptions, features: &'static [&'static str]) -> Self {
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let (online_tx, online_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
                let contact = tokio::spawn(plain_contact(options, features, seen_tx, stop_rx));
                if seen.recv().await.is_some() {
                    let _ = online_tx.send(());
                }
                if let Ok(stream) = contact.await {
                    let _ = tokio::time::timeout(Duration::from_secs(2), stream.close()).await;
                }
            });
        });
        online_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("plain contact online");
        Self {
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }
}

impl Drop for PlainContact {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A hostile client's raw bytes (issue 11): logs `user@domain/resource` in
/// over plaintext TCP to loopback (PLAIN, which the test Prosody allows
/// there), then writes each of `stanzas` exactly as given, so that a test
/// can send what no XMPP library would build (say, 36,000 nested elements).
/// The connection closes when the returned stream is dropped.
pub fn send_raw_stanzas(
    port: u16,
    domain: &str,
    user: &str,
    password: &str,
    resource: &str,
    stanzas: &[Vec<u8>],
) -> std::net::TcpStream {
    use base64::Engine as _;
    use std::io::{Read as _, Write as _};
    let mut socket = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let read_until = |socket: &mut std::net::TcpStream, marker: &str| {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&seen).contains(marker) {
            let n = socket.read(&mut buf).expect("read from the server");
            assert!(n > 0, "server closed: {}", String::from_utf8_lossy(&seen));
            seen.extend_from_slice(&buf[..n]);
        }
    };
    let header = format!(
        "<?xml version='1.0'?><stream:stream to='{domain}' xmlns='jabber:client' \
         xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
    );
    socket.write_all(header.as_bytes()).unwrap();
    read_until(&mut socket, "</stream:features>");
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
    socket
        .write_all(
            format!(
                "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{credentials}</auth>"
            )
            .as_bytes(),
        )
        .unwrap();
    read_until(&mut socket, "success");
    socket.write_all(header.as_bytes()).unwrap();
    read_until(&mut socket, "</stream:features>");
    socket
        .write_all(
            format!(
                "<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
                 <resource>{resource}</resource></bind></iq>"
            )
            .as_bytes(),
        )
        .unwrap();
    read_until(&mut socket, "</iq>");
    for stanza in stanzas {
        socket.write_all(stanza).unwrap();
    }
    socket.flush().unwrap();
    socket
}
