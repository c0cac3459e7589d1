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
            Self::Refused(why) => format!(
                "the server archives messages and would not let us change that ({why}); \
                 no session can be off the record"
            ),
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
    /// Our preference changes awaiting the server's answer: iq id -> contact.
    pending: HashMap<String, BareJid>,
}

/// What the layer must do after the server answered a preference change.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PrefsAnswer {
    /// Not one of ours.
    NotOurs,
    /// Done.
    Accepted,
    /// Refused: `contact`'s off-the-record sessions must end.
    Refused { contact: BareJid, reason: String },
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
        let Some(contact) = iq.attr("id").and_then(|id| self.pending.remove(id)) else {
            return PrefsAnswer::NotOurs;
        };
        if iq.attr("type") != Some("error") {
            return PrefsAnswer::Accepted;
        }
        let condition = iq
            .get_child("error", ns::JABBER_CLIENT)
            .and_then(|e| e.children().find(|c| c.ns() == ns::XMPP_STANZAS))
            .map_or_else(|| "an error".to_owned(), |c| c.name().to_owned());
        self.server = ServerArchive::Refused(format!(
            "it answered {condition} when asked to leave {contact} out of the archive"
        ));
        self.excluded.remove(&contact);
        PrefsAnswer::Refused {
            contact,
            reason: self.server.describe(),
        }
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
        let prefs = self.prefs.as_mut()?;
        let jid = Jid::from(contact.clone());
        let rule = if prefs.never.contains(&jid) {
            Rule::Never
        } else if prefs.always.contains(&jid) {
            Rule::Always
        } else {
            Rule::Default
        };
        self.excluded.insert(contact.clone(), rule);
        if rule == Rule::Never {
            return None;
        }
        prefs.always.retain(|j| *j != jid);
        prefs.never.push(jid);
        Some(self.prefs_set(contact, next_id()))
    }

    /// MAM: once no session with `contact` is off the record any more, puts
    /// their earlier rule back; the change to send.
    fn restore(
        &mut self,
        contact: &BareJid,
        next_id: &mut dyn FnMut() -> String,
    ) -> Option<Element> {
        if self.threads.keys().any(|(c, _)| c == contact) {
            return None;
        }
        let rule = self.excluded.remove(contact)?;
        if rule == Rule::Never || self.server != ServerArchive::Mam {
            return None;
        }
        let prefs = self.prefs.as_mut()?;
        let jid = Jid::from(contact.clone());
        prefs.never.retain(|j| *j != jid);
        if rule == Rule::Always {
            prefs.always.push(jid);
        }
        Some(self.prefs_set(contact, next_id()))
    }

    fn prefs_set(&mut self, contact: &BareJid, id: String) -> Element {
        self.pending.insert(id.clone(), contact.clone());
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
