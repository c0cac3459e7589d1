//! Keeping off-the-record sessions out of our server's archive (issue 14;
//! ARC-07/08/09/11, SSN-03, AMB-59).
//!
//! The core offers or accepts `logging=mustnot` only once told that our
//! server's archive can be kept out ([`esession::SessionManager::set_off_the_record_possible`]).
//! This module is what confirms it and then keeps the promise:
//!
//! - **What the server does** ([`ServerArchive`]): XEP-0313 (MAM) when our
//!   account advertises `urn:xmpp:mam:2` and lets us change its preferences;
//!   XEP-0136 when the server advertises `urn:xmpp:archive:auto` and lets us
//!   turn automatic archiving off for our stream; or no archive at all.
//! - **Per session**: every stanza of a session that may go, or went, off the
//!   record carries the XEP-0334 hints `no-store` and `no-permanent-store`
//!   (only `no-permanent-store` for XEP-0187 offline sessions, which the
//!   server must keep until the contact is back), and, on a XEP-0136 server,
//!   the SHIM `store=false` header (ARC-11). The negotiation messages are
//!   covered too: an offer that lists `mustnot` is hinted before anyone knows
//!   the outcome (ARC-08).
//! - **Per contact, with MAM**: before the first such stanza the contact is
//!   put in the `never` list of our archive preferences; when the last such
//!   session with them ends, their earlier rule is put back.
//!
//! A refused preference change ends the contact's off-the-record sessions and
//! stops `mustnot` from being offered again on this connection; the
//! application is told (`ClientEvent::OffTheRecordFailed`).

use std::collections::HashMap;

use esession::ssn::Logging;
use esession::{Event, SessionId};
use esession_wire::minidom::Element;
use esession_wire::ns;
use tokio_xmpp::jid::{BareJid, Jid};
use tokio_xmpp::minidom::rxml::xml_ncname;
use tokio_xmpp::parsers::mam_prefs::{DefaultPrefs, Prefs};

/// XEP-0313 Message Archive Management.
pub const MAM_NS: &str = "urn:xmpp:mam:2";
/// XEP-0136 Message Archiving (preferences, automatic archiving).
pub const ARCHIVE_NS: &str = "urn:xmpp:archive";
/// The XEP-0136 feature of automatic archiving.
pub const ARCHIVE_AUTO_FEATURE: &str = "urn:xmpp:archive:auto";
/// XEP-0334 Message Processing Hints.
const HINTS_NS: &str = "urn:xmpp:hints";
/// XEP-0131 Stanza Headers (SHIM).
const SHIM_NS: &str = "http://jabber.org/protocol/shim";

/// What our server archives, and whether we confirmed we can keep a session
/// out of it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerArchive {
    /// Not checked yet: nothing is promised off the record.
    Unknown,
    /// The server advertises no archive (neither XEP-0313 nor XEP-0136).
    None,
    /// XEP-0313, with preferences we may change: contacts are put in the
    /// `never` list for their off-the-record sessions.
    Mam,
    /// XEP-0136: automatic archiving is off for our stream (ARC-07/09).
    Xep0136,
    /// The server archives and would not let us change that: nothing is
    /// offered or accepted off the record. The text says what it answered.
    Refused(String),
}

impl ServerArchive {
    /// Whether a session can be kept out of the archive (ARC-07).
    pub fn off_the_record_possible(&self) -> bool {
        matches!(self, Self::None | Self::Mam | Self::Xep0136)
    }

    /// One line for the user.
    pub fn describe(&self) -> String {
        match self {
            Self::Unknown => "not checked yet; nothing is promised off the record".to_owned(),
            Self::None => "the server keeps no message archive".to_owned(),
            Self::Mam => "the server's archive (XEP-0313) leaves out off-the-record sessions: \
                          the contact is excluded while one runs"
                .to_owned(),
            Self::Xep0136 => "automatic archiving (XEP-0136) is off for this connection".to_owned(),
            Self::Refused(why) => format!("{why}; no session can be off the record"),
        }
    }
}

/// A contact's rule in our MAM preferences before we excluded them.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Rule {
    Always,
    Never,
    Default,
}

/// What a preference change of ours asked for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Change {
    /// The contact into `never`.
    Exclude,
    /// The contact's earlier rule back.
    Restore,
}

/// How a stanza is to be kept out of archives.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Keep {
    /// Neither archived nor stored (the hints `no-store` and `no-permanent-store`).
    Nowhere,
    /// Stored for an offline contact, never archived (XEP-0187).
    UntilDelivered,
}

/// The layer's record of what it keeps out of the archive.
#[derive(Debug)]
pub(crate) struct ArchiveControl {
    server: ServerArchive,
    /// Our MAM preferences as we last read or set them.
    prefs: Option<Prefs>,
    /// Contacts we put in `never`, with their rule before.
    excluded: HashMap<BareJid, Rule>,
    /// Sessions (contact, thread) that may be, or are, off the record.
    threads: HashMap<(BareJid, String), Keep>,
    /// Our preference changes awaiting the server's answer: iq id -> the
    /// contact, what we asked, and their rule before it.
    pending: HashMap<String, (BareJid, Change, Rule)>,
}

/// What the layer must do after the server answered a preference change.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PrefsAnswer {
    /// Not one of ours.
    NotOurs,
    /// Done.
    Accepted,
    /// Leaving `contact` out was refused: their off-the-record sessions must
    /// end, and nothing more is promised off the record.
    Refused { contact: BareJid, reason: String },
    /// Putting `contact`'s earlier rule back was refused: the user must know
    /// their preference is still `never`.
    NotRestored { contact: BareJid, reason: String },
}

impl ArchiveControl {
    pub(crate) fn new() -> Self {
        Self {
            server: ServerArchive::Unknown,
            prefs: None,
            excluded: HashMap::new(),
            threads: HashMap::new(),
            pending: HashMap::new(),
        }
    }

    pub(crate) fn server(&self) -> &ServerArchive {
        &self.server
    }

    /// Records what the server archives (and, with MAM, the preferences read).
    pub(crate) fn set_server(&mut self, server: ServerArchive, prefs: Option<Prefs>) {
        self.server = server;
        self.prefs = prefs;
    }

    /// Before `stanza` (a message we send) goes out: marks it to be kept out
    /// of archives when its session may be off the record, and returns the
    /// preference change to send first (MAM: the contact into `never`).
    pub(crate) fn outgoing(
        &mut self,
        stanza: &mut Element,
        next_id: impl FnOnce() -> String,
    ) -> Option<Element> {
        let (Some(contact), Some(thread)) = (recipient(stanza), thread_of(stanza)) else {
            return None;
        };
        let key = (contact.clone(), thread);
        let keep = match (self.threads.get(&key), negotiates_off_the_record(stanza)) {
            (Some(keep), _) => *keep,
            (None, Some(offline)) => {
                let keep = if offline {
                    Keep::UntilDelivered
                } else {
                    Keep::Nowhere
                };
                self.threads.insert(key, keep);
                keep
            }
            (None, None) => return None,
        };
        self.hint(stanza, keep);
        self.exclude(&contact, next_id)
    }

    /// Follows the core's events: an agreed `may` or an ended session no longer
    /// needs keeping out; an agreed `mustnot` does. Returns the preference
    /// change to send (a contact's earlier rule put back, or their exclusion).
    pub(crate) fn on_event(
        &mut self,
        event: &Event,
        next_id: &mut dyn FnMut() -> String,
    ) -> Option<Element> {
        let (session, off_the_record) = match event {
            Event::Established { session, info } => {
                (session, Some(info.logging == Logging::MustNot))
            }
            Event::Terminated { session, .. } | Event::NegotiationFailed { session, .. } => {
                (session, None)
            }
            _ => return None,
        };
        let contact = session.peer.to_bare();
        let key = (contact.clone(), session.thread.clone());
        match off_the_record {
            Some(true) => {
                let keep = if matches!(event, Event::Established { info, .. } if info.offline) {
                    Keep::UntilDelivered
                } else {
                    Keep::Nowhere
                };
                self.threads.entry(key).or_insert(keep);
                self.exclude(&contact, &mut *next_id)
            }
            Some(false) | None => {
                self.threads.remove(&key);
                self.restore(&contact, next_id)
            }
        }
    }

    /// Whether `session` is kept out of the archive.
    pub(crate) fn is_off_the_record(&self, session: &SessionId) -> bool {
        self.threads
            .contains_key(&(session.peer.to_bare(), session.thread.clone()))
    }

    /// The answer to one of our preference changes.
    pub(crate) fn on_answer(&mut self, iq: &Element) -> PrefsAnswer {
        let Some((contact, change, rule)) = iq.attr("id").and_then(|id| self.pending.remove(id))
        else {
            return PrefsAnswer::NotOurs;
        };
        if iq.attr("type") != Some("error") {
            return PrefsAnswer::Accepted;
        }
        let condition = iq
            .get_child("error", ns::JABBER_CLIENT)
            .and_then(|e| e.children().find(|c| c.ns() == ns::XMPP_STANZAS))
            .map_or_else(|| "an error".to_owned(), |c| c.name().to_owned());
        // Our copy of the preferences follows what the server holds.
        self.set_rule(
            &contact,
            if change == Change::Exclude {
                rule
            } else {
                Rule::Never
            },
        );
        match change {
            Change::Exclude => {
                self.excluded.remove(&contact);
                self.server = ServerArchive::Refused(format!(
                    "the server archives messages and answered {condition} when asked to leave \
                     {contact} out of its archive"
                ));
                PrefsAnswer::Refused {
                    contact,
                    reason: self.server.describe(),
                }
            }
            Change::Restore => PrefsAnswer::NotRestored {
                contact,
                reason: format!("the server answered {condition}"),
            },
        }
    }

    /// Our connection restarted as a new stream: nothing is promised off the
    /// record until the archive is checked again (XEP-0136's setting was for
    /// the old stream). The contacts we left out stay recorded, so that their
    /// rules are put back when their sessions are gone.
    pub(crate) fn suspend(&mut self) {
        self.server = ServerArchive::Unknown;
        self.pending.clear();
    }

    /// Forgets the sessions the core no longer holds (some end without an
    /// event: a negotiation we gave up, one dropped by a reset) and returns
    /// the preference changes that puts back.
    pub(crate) fn keep_only(
        &mut self,
        live: impl Fn(&BareJid, &str) -> bool,
        next_id: &mut dyn FnMut() -> String,
    ) -> Vec<Element> {
        let before = self.threads.len();
        self.threads
            .retain(|(contact, thread), _| live(contact, thread));
        if self.threads.len() == before {
            return Vec::new();
        }
        let contacts: Vec<BareJid> = self.excluded.keys().cloned().collect();
        contacts
            .iter()
            .filter_map(|c| self.restore(c, next_id))
            .collect()
    }

    /// Every exclusion undone (before going offline): the preference changes to send.
    pub(crate) fn restore_all(&mut self, next_id: &mut dyn FnMut() -> String) -> Vec<Element> {
        self.threads.clear();
        let contacts: Vec<BareJid> = self.excluded.keys().cloned().collect();
        contacts
            .iter()
            .filter_map(|c| self.restore(c, next_id))
            .collect()
    }

    fn hint(&self, stanza: &mut Element, keep: Keep) {
        if stanza.has_child("no-permanent-store", HINTS_NS) {
            return;
        }
        if keep == Keep::Nowhere {
            stanza.append_child(Element::bare("no-store", HINTS_NS));
        }
        stanza.append_child(Element::bare("no-permanent-store", HINTS_NS));
        if self.server == ServerArchive::Xep0136 {
            // ARC-11: a server MUST NOT archive a message whose SHIM `store` is false.
            stanza.append_child(
                Element::builder("headers", SHIM_NS)
                    .append(
                        Element::builder("header", SHIM_NS)
                            .attr(xml_ncname!("name").to_owned(), "store")
                            .append("false")
                            .build(),
                    )
                    .build(),
            );
        }
    }

    /// MAM: puts `contact` in `never`, remembering their rule; the change to send.
    fn exclude(&mut self, contact: &BareJid, next_id: impl FnOnce() -> String) -> Option<Element> {
        if self.server != ServerArchive::Mam || self.excluded.contains_key(contact) {
            return None;
        }
        let rule = self.rule_of(contact)?;
        self.excluded.insert(contact.clone(), rule);
        if rule == Rule::Never {
            return None;
        }
        self.set_rule(contact, Rule::Never);
        Some(self.prefs_set(contact, Change::Exclude, rule, next_id()))
    }

    /// MAM: once no session with `contact` is off the record any more, puts
    /// their earlier rule back (whatever the server's state now: we changed
    /// it, so we undo it); the change to send.
    fn restore(
        &mut self,
        contact: &BareJid,
        next_id: &mut dyn FnMut() -> String,
    ) -> Option<Element> {
        if self.threads.keys().any(|(c, _)| c == contact) {
            return None;
        }
        let rule = self.excluded.remove(contact)?;
        if rule == Rule::Never {
            return None;
        }
        self.set_rule(contact, rule);
        Some(self.prefs_set(contact, Change::Restore, rule, next_id()))
    }

    /// `contact`'s rule in our copy of the preferences.
    fn rule_of(&self, contact: &BareJid) -> Option<Rule> {
        let prefs = self.prefs.as_ref()?;
        let jid = Jid::from(contact.clone());
        Some(if prefs.never.contains(&jid) {
            Rule::Never
        } else if prefs.always.contains(&jid) {
            Rule::Always
        } else {
            Rule::Default
        })
    }

    /// Sets `contact`'s rule in our copy of the preferences.
    fn set_rule(&mut self, contact: &BareJid, rule: Rule) {
        let Some(prefs) = self.prefs.as_mut() else {
            return;
        };
        let jid = Jid::from(contact.clone());
        prefs.always.retain(|j| *j != jid);
        prefs.never.retain(|j| *j != jid);
        match rule {
            Rule::Always => prefs.always.push(jid),
            Rule::Never => prefs.never.push(jid),
            Rule::Default => {}
        }
    }

    fn prefs_set(&mut self, contact: &BareJid, change: Change, rule: Rule, id: String) -> Element {
        self.pending
            .insert(id.clone(), (contact.clone(), change, rule));
        let prefs = self.prefs.clone().unwrap_or(Prefs {
            default_: DefaultPrefs::Roster,
            always: Vec::new(),
            never: Vec::new(),
        });
        Element::builder("iq", ns::JABBER_CLIENT)
            .attr(xml_ncname!("type").to_owned(), "set")
            .attr(xml_ncname!("id").to_owned(), id)
            .append(Element::from(prefs))
            .build()
    }
}

/// The XEP-0313 request for our preferences.
pub fn prefs_query() -> Element {
    Element::bare("prefs", MAM_NS)
}

/// A no-op change that proves the preferences may be changed: `prefs` as read.
pub fn prefs_unchanged(prefs: &Prefs) -> Element {
    Element::from(prefs.clone())
}

/// XEP-0136: automatic archiving off for this stream (ARC-07/09).
pub fn auto_archiving_off() -> Element {
    Element::builder("auto", ARCHIVE_NS)
        .attr(xml_ncname!("save").to_owned(), "false")
        .attr(xml_ncname!("scope").to_owned(), "stream")
        .build()
}

fn recipient(stanza: &Element) -> Option<BareJid> {
    stanza
        .attr("to")
        .and_then(|to| Jid::new(to).ok())
        .map(|jid| jid.to_bare())
}

fn thread_of(stanza: &Element) -> Option<String> {
    stanza
        .get_child("thread", ns::JABBER_CLIENT)
        .map(Element::text)
        .filter(|t| !t.is_empty())
}

/// Whether a negotiation message we send lists `mustnot` (or the legacy
/// `otr=true`, AMB-01) in its `logging` field: `Some(offline)` (an XEP-0187
/// `<init/>` is stored for the contact), `None` otherwise. Only clear forms
/// are read: anything inside `<c/>` belongs to a session already tracked.
fn negotiates_off_the_record(stanza: &Element) -> Option<bool> {
    let (wrapper, offline) = stanza.children().find_map(|c| {
        if c.is("feature", ns::FEATURE_NEG) {
            Some((c, false))
        } else if c.is("init", ns::ESESSION_INIT) {
            Some((c, true))
        } else {
            None
        }
    })?;
    let form = wrapper.get_child("x", ns::DATA_FORMS)?;
    let values = |field: &Element| -> Vec<String> {
        field
            .children()
            .filter(|c| c.is("value", ns::DATA_FORMS))
            .map(Element::text)
            .chain(
                field
                    .children()
                    .filter(|c| c.is("option", ns::DATA_FORMS))
                    .filter_map(|o| o.get_child("value", ns::DATA_FORMS))
                    .map(Element::text),
            )
            .collect()
    };
    let listed = form
        .children()
        .filter(|f| f.is("field", ns::DATA_FORMS))
        .any(|f| match f.attr("var") {
            Some("logging") => values(f).iter().any(|v| v == "mustnot"),
            Some("otr") => values(f).iter().any(|v| v == "true" || v == "1"),
            _ => false,
        });
    listed.then_some(offline)
}

/// Reads the features of a disco#info result: what kind of archive.
pub fn archive_kind(features: &[String]) -> ServerArchive {
    if features.iter().any(|f| f == MAM_NS) {
        ServerArchive::Mam
    } else if features.iter().any(|f| f == ARCHIVE_AUTO_FEATURE) {
        ServerArchive::Xep0136
    } else {
        ServerArchive::None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, reason = "test code")]

    use super::*;

    fn parse(xml: &str) -> Element {
        xml.parse().unwrap()
    }

    const OFFER_MUSTNOT: &str = "<message xmlns='jabber:client' to='bob@example.com/pc' type='chat'>\
        <thread>t1</thread><feature xmlns='http://jabber.org/protocol/feature-neg'>\
        <x xmlns='jabber:x:data' type='form'><field var='logging' type='list-single'>\
        <option><value>may</value></option><option><value>mustnot</value></option></field>\
        </x></feature></message>";
    const OFFER_MAY: &str = "<message xmlns='jabber:client' to='bob@example.com/pc' type='chat'>\
        <thread>t2</thread><feature xmlns='http://jabber.org/protocol/feature-neg'>\
        <x xmlns='jabber:x:data' type='form'><field var='logging' type='list-single'>\
        <option><value>may</value></option></field></x></feature></message>";

    fn mam(prefs: Prefs) -> ArchiveControl {
        let mut control = ArchiveControl::new();
        control.set_server(ServerArchive::Mam, Some(prefs));
        control
    }

    fn prefs(always: &[&str], never: &[&str]) -> Prefs {
        Prefs {
            default_: DefaultPrefs::Always,
            always: always.iter().map(|j| Jid::new(j).unwrap()).collect(),
            never: never.iter().map(|j| Jid::new(j).unwrap()).collect(),
        }
    }

    fn jids(list: &[Jid]) -> Vec<String> {
        list.iter().map(|j| j.to_string()).collect()
    }

    #[test]
    fn an_offer_listing_mustnot_is_hinted_and_excludes_the_contact_first() {
        let mut control = mam(prefs(&["bob@example.com", "carol@example.com"], &[]));
        let mut offer = parse(OFFER_MUSTNOT);
        let change = control.outgoing(&mut offer, || "p1".to_owned()).unwrap();
        assert!(offer.has_child("no-store", HINTS_NS));
        assert!(offer.has_child("no-permanent-store", HINTS_NS));
        let set = change.get_child("prefs", MAM_NS).unwrap();
        let set = Prefs::try_from(set.clone()).unwrap();
        assert_eq!(jids(&set.never), ["bob@example.com"]);
        assert_eq!(jids(&set.always), ["carol@example.com"]);
        // The session's later stanzas are hinted too, with no second change.
        let mut later = parse(
            "<message xmlns='jabber:client' to='bob@example.com/pc'><thread>t1</thread>\
             <c xmlns='http://www.xmpp.org/extensions/xep-0200.html#ns'/></message>",
        );
        assert!(control.outgoing(&mut later, || "p2".to_owned()).is_none());
        assert!(later.has_child("no-store", HINTS_NS));
        assert_eq!(
            control.on_answer(&parse("<iq xmlns='jabber:client' type='result' id='p1'/>")),
            PrefsAnswer::Accepted
        );
    }

    #[test]
    fn a_session_that_may_be_logged_is_left_alone() {
        let mut control = mam(prefs(&[], &[]));
        let mut offer = parse(OFFER_MAY);
        assert!(control.outgoing(&mut offer, || "p1".to_owned()).is_none());
        assert!(!offer.has_child("no-store", HINTS_NS));
        assert!(!offer.has_child("no-permanent-store", HINTS_NS));
    }

    #[test]
    fn the_earlier_rule_comes_back_when_the_last_session_ends() {
        let mut control = mam(prefs(&["bob@example.com"], &["dave@example.com"]));
        let mut offer = parse(OFFER_MUSTNOT);
        control.outgoing(&mut offer, || "p1".to_owned()).unwrap();
        let session = SessionId {
            peer: Jid::new("bob@example.com/pc").unwrap(),
            thread: "t1".to_owned(),
        };
        let mut ids = 0;
        let mut next = || {
            ids += 1;
            format!("r{ids}")
        };
        let ended = Event::Terminated {
            session,
            reason: esession::TerminationReason::LocalRequest,
        };
        let restore = control.on_event(&ended, &mut next).unwrap();
        let set = Prefs::try_from(restore.get_child("prefs", MAM_NS).unwrap().clone()).unwrap();
        assert_eq!(jids(&set.always), ["bob@example.com"]);
        assert_eq!(jids(&set.never), ["dave@example.com"]);
        // A contact already in `never` is neither changed nor "restored".
        let mut to_dave = parse(&OFFER_MUSTNOT.replace("bob@example.com", "dave@example.com"));
        assert!(control.outgoing(&mut to_dave, || "p9".to_owned()).is_none());
        assert!(control.restore_all(&mut next).is_empty());
    }

    #[test]
    fn a_refused_change_says_why_and_stops_promising() {
        let mut control = mam(prefs(&[], &[]));
        let mut offer = parse(OFFER_MUSTNOT);
        control.outgoing(&mut offer, || "p1".to_owned()).unwrap();
        let answer = control.on_answer(&parse(
            "<iq xmlns='jabber:client' type='error' id='p1'><error type='cancel'>\
             <not-allowed xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
        ));
        let PrefsAnswer::Refused { contact, reason } = answer else {
            panic!("refused");
        };
        assert_eq!(contact.as_str(), "bob@example.com");
        assert!(reason.contains("not-allowed"), "{reason}");
        assert!(!control.server().off_the_record_possible());
    }

    #[test]
    fn a_refused_restore_is_reported_and_other_contacts_still_get_theirs_back() {
        let mut control = mam(prefs(&["bob@example.com", "carol@example.com"], &[]));
        let mut to_bob = parse(OFFER_MUSTNOT);
        control
            .outgoing(&mut to_bob, || "x-bob".to_owned())
            .unwrap();
        let mut to_carol = parse(&OFFER_MUSTNOT.replace("bob@", "carol@").replace("t1", "t5"));
        control
            .outgoing(&mut to_carol, || "x-carol".to_owned())
            .unwrap();
        // Bob's exclusion is refused: nothing more is promised off the record.
        let refused = control.on_answer(&parse(
            "<iq xmlns='jabber:client' type='error' id='x-bob'><error type='cancel'>\
             <not-allowed xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
        ));
        assert!(matches!(refused, PrefsAnswer::Refused { .. }));
        // Carol's session ends (the core no longer holds it): her rule comes
        // back even though the server is now "refused", and Bob's rule in our
        // copy was never changed.
        let mut next = || "r1".to_owned();
        let changes = control.keep_only(|c, _| c.as_str() == "bob@example.com", &mut next);
        assert_eq!(changes.len(), 1);
        let set = Prefs::try_from(changes[0].get_child("prefs", MAM_NS).unwrap().clone()).unwrap();
        assert_eq!(jids(&set.always), ["bob@example.com", "carol@example.com"]);
        assert!(set.never.is_empty());
        // The restore itself refused: reported as such, not as a refusal to exclude.
        let answer = control.on_answer(&parse(
            "<iq xmlns='jabber:client' type='error' id='r1'><error type='cancel'>\
             <forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
        ));
        let PrefsAnswer::NotRestored { contact, reason } = answer else {
            panic!("not restored");
        };
        assert_eq!(contact.as_str(), "carol@example.com");
        assert!(reason.contains("forbidden"), "{reason}");
    }

    #[test]
    fn a_new_stream_promises_nothing_until_checked_again() {
        let mut control = mam(prefs(&[], &[]));
        control.suspend();
        assert!(!control.server().off_the_record_possible());
        let mut offer = parse(OFFER_MUSTNOT);
        // Still hinted (our side of the promise), but no exclusion is sent.
        assert!(control.outgoing(&mut offer, || "p1".to_owned()).is_none());
        assert!(offer.has_child("no-store", HINTS_NS));
    }

    #[test]
    fn an_offline_init_is_stored_for_the_contact_but_never_archived() {
        let mut control = ArchiveControl::new();
        control.set_server(ServerArchive::Xep0136, None);
        let mut init = parse(
            "<message xmlns='jabber:client' to='bob@example.com'><thread>t3</thread>\
             <init xmlns='http://www.xmpp.org/extensions/xep-0116.html#ns-init'>\
             <x xmlns='jabber:x:data' type='submit'><field var='logging'><value>mustnot</value>\
             </field></x></init></message>",
        );
        assert!(control.outgoing(&mut init, || "p1".to_owned()).is_none());
        assert!(!init.has_child("no-store", HINTS_NS));
        assert!(init.has_child("no-permanent-store", HINTS_NS));
        assert!(
            init.has_child("headers", SHIM_NS),
            "ARC-11 on a XEP-0136 server"
        );
    }

    #[test]
    fn the_kind_of_archive_comes_from_the_features() {
        let f = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            archive_kind(&f(&[MAM_NS, "urn:xmpp:mam:1"])),
            ServerArchive::Mam
        );
        assert_eq!(
            archive_kind(&f(&[ARCHIVE_AUTO_FEATURE])),
            ServerArchive::Xep0136
        );
        assert_eq!(
            archive_kind(&f(&["jabber:iq:version"])),
            ServerArchive::None
        );
        assert!(!ServerArchive::Unknown.off_the_record_possible());
        assert!(ServerArchive::None.off_the_record_possible());
    }
}
