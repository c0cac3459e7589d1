//! Issue 17 (work in progress): Python bindings to the sans-IO ESession
//! core. Stanzas cross as XML strings; events are plain dicts whose keys
//! never hold key material.

#![forbid(unsafe_code)]

use std::time::{SystemTime, UNIX_EPOCH};

use esession::{Config, Event, MemoryTrustStore, Output, SessionId, SystemRandomness};
use esession_wire::minidom::Element;
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;

create_exception!(
    _esession,
    EsessionError,
    PyException,
    "An ESession operation failed."
);
create_exception!(
    _esession,
    PeerError,
    EsessionError,
    "What the peer (or someone between) sent failed verification: treat as an alarm."
);
create_exception!(
    _esession,
    IncompatibleError,
    EsessionError,
    "The peer is not at fault, but we cannot agree (no common algorithm, declined)."
);
create_exception!(
    _esession,
    UsageError,
    EsessionError,
    "The application asked for something impossible (no such session, bad input)."
);
create_exception!(
    _esession,
    LocalError,
    EsessionError,
    "Our side or the network: a timeout, a reset connection, a limit of ours."
);

/// Elements in one received stanza at most (hostile input is bounded
/// before the core sees it; the core bounds decrypted content itself).
const MAX_STANZA_ELEMENTS: usize = 16_384;

/// Seconds since the Unix epoch, from the system clock.
struct SystemClock;

impl esession::Clock for SystemClock {
    fn now_unix(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}

fn error(e: impl std::fmt::Display) -> PyErr {
    EsessionError::new_err(e.to_string())
}

/// The core's error as the exception for who is at fault.
fn core_error(e: esession::Error) -> PyErr {
    let text = e.to_string();
    match e.fault() {
        esession::Fault::Peer => PeerError::new_err(text),
        esession::Fault::Incompatible => IncompatibleError::new_err(text),
        esession::Fault::Application => UsageError::new_err(text),
        esession::Fault::Local => LocalError::new_err(text),
        _ => EsessionError::new_err(text),
    }
}

fn os_rng() -> PyResult<ChaCha20Rng> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| error(format!("no OS randomness: {e}")))?;
    Ok(ChaCha20Rng::from_seed(seed))
}

/// One session manager: the whole protocol state of one account.
#[pyclass(unsendable)]
struct SessionManager {
    inner: esession::SessionManager,
}

fn session_dict<'py>(py: Python<'py>, session: &SessionId) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("peer", session.peer.as_str())?;
    d.set_item("thread", &session.thread)?;
    Ok(d)
}

fn event_dict<'py>(py: Python<'py>, event: &Event) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    match event {
        Event::Established { session, info } => {
            d.set_item("event", "established")?;
            d.set_item("session", session_dict(py, session)?)?;
            d.set_item("sas", &info.sas)?;
            d.set_item("verified", info.is_verified())?;
            d.set_item(
                "authenticated_by_retained_secret",
                info.authenticated_by_retained_secret,
            )?;
        }
        Event::MessageReceived {
            session, message, ..
        } => {
            d.set_item("event", "message")?;
            d.set_item("session", session_dict(py, session)?)?;
            d.set_item("stanza", String::from(message))?;
            let body = message
                .get_child("body", esession_wire::ns::JABBER_CLIENT)
                .map(Element::text);
            d.set_item("body", body)?;
        }
        Event::StanzaReceived { session, stanza } => {
            d.set_item("event", "stanza")?;
            d.set_item("session", session_dict(py, session)?)?;
            d.set_item("stanza", String::from(stanza))?;
        }
        Event::Terminated { session, reason } => {
            d.set_item("event", "terminated")?;
            d.set_item("session", session_dict(py, session)?)?;
            d.set_item("reason", reason.name())?;
        }
        Event::NegotiationFailed { session, error } => {
            d.set_item("event", "negotiation_failed")?;
            d.set_item("session", session_dict(py, session)?)?;
            d.set_item("message", error.to_string())?;
        }
        Event::MessageDelivered { session, id } => {
            d.set_item("event", "delivered")?;
            d.set_item("session", session_dict(py, session)?)?;
            d.set_item("id", id)?;
        }
        _ => {
            d.set_item("event", "other")?;
        }
    }
    Ok(d)
}

/// `(stanzas, events)`: XML strings to send, in order, and event dicts.
fn output<'py>(py: Python<'py>, out: &Output) -> PyResult<(Vec<String>, Bound<'py, PyList>)> {
    let stanzas = out.stanzas.iter().map(String::from).collect();
    let events = PyList::empty(py);
    for event in &out.events {
        events.append(event_dict(py, event)?)?;
    }
    Ok((stanzas, events))
}

/// One stanza from XML. A stanza as a stream carries it may leave out its
/// namespace (the stream's default, jabber:client), as slixmpp's
/// `str(stanza)` does.
fn parse_one(xml: &str) -> PyResult<Element> {
    let nodes = esession_wire::xml::parse_fragment_bounded(
        xml,
        esession_wire::ns::JABBER_CLIENT,
        MAX_STANZA_ELEMENTS,
    )
    .map_err(|e| UsageError::new_err(e.to_string()))?;
    let mut elements = nodes.into_iter().filter_map(|node| match node {
        esession_wire::minidom::Node::Element(element) => Some(element),
        esession_wire::minidom::Node::Text(_) => None,
    });
    match (elements.next(), elements.next()) {
        (Some(stanza), None) => Ok(stanza),
        _ => Err(UsageError::new_err("expected exactly one stanza")),
    }
}

fn session_id(peer: &str, thread: &str) -> PyResult<SessionId> {
    Ok(SessionId {
        peer: jid::Jid::new(peer).map_err(|e| error(format!("{peer}: {e}")))?,
        thread: thread.to_owned(),
    })
}

#[pymethods]
impl SessionManager {
    /// A manager for the account `jid` (our full JID). Trust (retained
    /// secrets, keys, verifications) lives in the encrypted SQLite store at
    /// `store` (created if missing), unlocked by `passphrase` or `key_file`;
    /// without `store`, in memory only (lost at exit).
    #[new]
    #[pyo3(signature = (jid, store=None, passphrase=None, key_file=None))]
    fn new(
        jid: &str,
        store: Option<std::path::PathBuf>,
        passphrase: Option<&str>,
        key_file: Option<std::path::PathBuf>,
    ) -> PyResult<Self> {
        let trust: Box<dyn esession::TrustStore + Send> = match store {
            None => Box::new(MemoryTrustStore::new()),
            Some(path) => {
                let unlock = || match (passphrase, &key_file) {
                    (Some(p), None) => Ok(esession_store::Unlock::Passphrase(
                        esession_crypto::SecretBytes::from_slice(p.as_bytes()),
                    )),
                    (None, Some(k)) => Ok(esession_store::Unlock::KeyFile(k.clone())),
                    _ => Err(error(
                        "give exactly one of passphrase or key_file with store",
                    )),
                };
                let opened = if path.exists() {
                    esession_store::Store::open(&path, unlock()?)
                } else {
                    esession_store::Store::create(&path, unlock()?)
                }
                .map_err(error)?;
                let bare = jid.split('/').next().unwrap_or(jid);
                Box::new(opened.account(bare).map_err(error)?)
            }
        };
        let inner = esession::SessionManager::new(
            Config {
                own_jid: Some(jid.to_owned()),
                ..Config::default()
            },
            Box::new(SystemRandomness::new(os_rng()?)),
            trust,
            Box::new(SystemClock),
        )
        .map_err(error)?;
        Ok(Self { inner })
    }

    /// Whether `jid`'s presence subscription to us lets them start sessions
    /// that we answer without asking (SSN-09, ESN-07): a stranger's offer is
    /// never answered. Feed it the roster's `from`/`both` items.
    fn set_presence_subscription(&mut self, jid: &str, subscribed: bool) {
        self.inner.set_presence_subscription(jid, subscribed);
    }

    /// The user compared the SAS with the contact and it matched.
    fn confirm_sas(&mut self, peer: &str, thread: &str) -> PyResult<()> {
        self.inner
            .confirm_sas(&session_id(peer, thread)?)
            .map_err(core_error)
    }

    /// The SAS did not match: ends the session and forgets its secrets.
    fn distrust<'py>(
        &mut self,
        py: Python<'py>,
        peer: &str,
        thread: &str,
    ) -> PyResult<(Vec<String>, Bound<'py, PyList>)> {
        let out = self
            .inner
            .distrust(&session_id(peer, thread)?)
            .map_err(core_error)?;
        output(py, &out)
    }

    /// Offers a session to `peer`; returns `(thread, stanzas, events)`.
    fn start_session<'py>(
        &mut self,
        py: Python<'py>,
        peer: &str,
    ) -> PyResult<(String, Vec<String>, Bound<'py, PyList>)> {
        let (id, out) = self.inner.start_session(peer).map_err(core_error)?;
        let (stanzas, events) = output(py, &out)?;
        Ok((id.thread, stanzas, events))
    }

    /// Handles one received stanza (XML); returns `(stanzas, events)`.
    fn handle_stanza<'py>(
        &mut self,
        py: Python<'py>,
        xml: &str,
    ) -> PyResult<(Vec<String>, Bound<'py, PyList>)> {
        let stanza = parse_one(xml)?;
        let out = self.inner.handle_stanza(&stanza);
        output(py, &out)
    }

    /// Encrypts `text` in the session with `peer` and `thread`.
    fn send_text<'py>(
        &mut self,
        py: Python<'py>,
        peer: &str,
        thread: &str,
        text: &str,
    ) -> PyResult<(Vec<String>, Bound<'py, PyList>)> {
        let out = self
            .inner
            .send_text(&session_id(peer, thread)?, text)
            .map_err(core_error)?;
        output(py, &out)
    }

    /// Encrypts a whole `<message/>`, `<presence/>` or `<iq/>` (XML) in the
    /// session with `peer` and `thread` (its addressing is the session's).
    fn send_stanza<'py>(
        &mut self,
        py: Python<'py>,
        peer: &str,
        thread: &str,
        xml: &str,
    ) -> PyResult<(Vec<String>, Bound<'py, PyList>)> {
        let stanza = parse_one(xml)?;
        let out = self
            .inner
            .send_stanza(&session_id(peer, thread)?, &stanza)
            .map_err(core_error)?;
        output(py, &out)
    }

    /// The wire profile for `peer` (a bare JID): `"standard"`, or `"gajim"`
    /// for Gajim 0.12-0.16's quirks (docs/INTEROP.md).
    fn set_profile(&mut self, peer: &str, profile: &str) -> PyResult<()> {
        let profile = match profile {
            "standard" => esession::Profile::standard(),
            "gajim" => esession::Profile::gajim(),
            other => {
                return Err(UsageError::new_err(format!(
                    "unknown profile {other:?}: use \"standard\" or \"gajim\""
                )));
            }
        };
        self.inner.set_profile(peer, profile);
        Ok(())
    }

    /// Ends the session.
    fn terminate<'py>(
        &mut self,
        py: Python<'py>,
        peer: &str,
        thread: &str,
    ) -> PyResult<(Vec<String>, Bound<'py, PyList>)> {
        let out = self
            .inner
            .terminate(&session_id(peer, thread)?)
            .map_err(core_error)?;
        output(py, &out)
    }

    /// Expired timers (negotiations, key lifetimes, idle rekeys).
    fn poll_timers<'py>(&mut self, py: Python<'py>) -> PyResult<(Vec<String>, Bound<'py, PyList>)> {
        let out = self.inner.poll_timers();
        output(py, &out)
    }

    /// When `poll_timers` is next due (Unix seconds), if ever.
    fn next_deadline(&self) -> Option<u64> {
        self.inner.next_deadline()
    }

    fn __repr__(&self) -> String {
        "SessionManager(...)".to_owned()
    }
}

/// The compiled part of the `esession_py` package.
#[pymodule]
fn _esession(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<SessionManager>()?;
    m.add("EsessionError", m.py().get_type::<EsessionError>())?;
    m.add("PeerError", m.py().get_type::<PeerError>())?;
    m.add("IncompatibleError", m.py().get_type::<IncompatibleError>())?;
    m.add("UsageError", m.py().get_type::<UsageError>())?;
    m.add("LocalError", m.py().get_type::<LocalError>())?;
    Ok(())
}
