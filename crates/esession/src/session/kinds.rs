//! `<presence/>` and `<iq/>` inside an ESession (XEP-0200 §Encryptable
//! Content, XEP-0116 `stanzas` field): ENC-01..03, AMB-26.
//!
//! Messages are bound to their session by `<thread/>`; presence and iq carry
//! no thread, so they belong to the one ESession of that full-JID pair that
//! agreed their kind (AMB-26). Sealing follows ENC-02/03:
//!
//! ```text
//!   <iq type='error' id=..>                 <iq type='error' id=..>
//!     <payload/>                              <c> data(payload) mac </c>      (counter first)
//!     <error type='modify'>         ──►       <error type='modify'>
//!       <not-acceptable/>  (clear)              <not-acceptable/>
//!       <app-condition/>                        <c> data(app-condition, text) mac </c>  (then)
//!       <text/>                               </error>
//!     </error>                              </iq>
//! ```
//!
//! Every sealed stanza carries a top-level `<c/>`, even when it has no content
//! (then only `<mac/>`, ENC-10), so that nothing of it is unauthenticated
//! (AMB-26). The `<error/>` element, its attributes and its defined condition
//! stay in clear (ENC-02); everything else inside `<error/>` goes into one
//! inner `<c/>`, present only when there is something to hide (ENC-03).
//! Counters run in the order of sealing: the top-level `<c/>`, then the inner
//! one, wherever a relay or library puts the `<error/>` (ENC-03).
//! Receiving verifies every `<c/>` of the stanza before anything is
//! decompressed or committed, so a failure leaves the session untouched.
//!
//! Rekeying (ENC-08, ENC-11, ENC-16, proposed AMB-63, see [`super`]): both
//! `<c/>` of one stanza are under the same key set and carry the same
//! `<new/>`; only the top-level one carries `<key/>` (and `<old/>`), and the
//! new keys apply from the next stanza on. A stanza whose `<c/>` disagree is
//! refused whole.

use esession_wire::minidom::Element;
use esession_wire::{ns, xml};
use jid::Jid;

use super::{EstablishedSession, OpenFailure, Phase, Purpose};
use crate::Error;
use crate::random::Randomness;
use crate::stanza::{StanzaKind, set_attr};

/// `presence` types whose content an ESession may carry: available (no
/// type), unavailable and error. Subscriptions and probes are handled by
/// servers, whose part of a stanza is never encrypted (ENC-01).
fn presence_type_ok(kind: Option<&str>) -> bool {
    matches!(kind, None | Some("unavailable" | "error"))
}

/// Whether `el` is an XEP-0200 `<c/>`.
fn is_c(el: &Element) -> bool {
    el.is("c", ns::STANZA_ENCRYPTION)
}

/// Whether `el` is a defined condition of `<error/>` (RFC 6120 §8.3.3), which
/// stays in clear (ENC-02); `<text/>` shares the namespace but is not one.
fn is_defined_condition(el: &Element) -> bool {
    el.ns() == ns::XMPP_STANZAS && el.name() != "text"
}

fn serialize(el: &Element) -> Result<String, Error> {
    xml::serialize(el, ns::JABBER_CLIENT).map_err(|_| Error::InvalidInput("unserializable child"))
}

impl EstablishedSession {
    /// Encrypts a directed `<presence/>` or an `<iq/>` to the peer (ENC-01..03,
    /// AMB-26). `to` is set to the peer's full JID (the stanza must be
    /// addressed to the peer, bare or full), `from` to ours; `type` and, for
    /// iq, `id` are kept. The caller checked that the kind was agreed and that
    /// this session is the only one for it with the peer (AMB-26).
    ///
    /// Like [`Self::seal_message`], it may return a rekey-only stanza first
    /// (ENC-19) and fails with [`Error::KeysExhausted`] when the keys are used
    /// up and `rekey_freq` bars a rekey (AMB-28).
    pub(crate) fn seal_unthreaded(
        &mut self,
        plain: &Element,
        rng: &mut dyn Randomness,
        now: u64,
    ) -> Result<Vec<Element>, Error> {
        if self.phase != Phase::Active {
            return Err(Error::SessionEnded);
        }
        let kind = crate::stanza::kind_of(plain)
            .filter(|k| *k != StanzaKind::Message)
            .ok_or(Error::InvalidInput(
                "not a jabber:client <presence/> or <iq/>",
            ))?;
        if !self.info.stanzas.contains(&kind) {
            return Err(Error::StanzaKindNotAgreed(kind));
        }
        let stanza_type = plain.attr("type");
        let id = plain.attr("id");
        match kind {
            StanzaKind::Presence if !presence_type_ok(stanza_type) => {
                return Err(Error::InvalidInput(
                    "subscription and probe presence is for servers: never encrypted",
                ));
            }
            StanzaKind::Iq if !matches!(stanza_type, Some("get" | "set" | "result" | "error")) => {
                return Err(Error::InvalidInput(
                    "iq type must be get, set, result or error",
                ));
            }
            StanzaKind::Iq if id.is_none_or(str::is_empty) => {
                return Err(Error::InvalidInput("iq needs an id"));
            }
            _ => {}
        }
        // ENC-01: broadcast presence (no `to`) is for the server to fan out; it
        // always stays in clear and never goes through a session.
        let Some(to) = plain.attr("to") else {
            return Err(Error::InvalidInput(
                "broadcast presence and iq without `to` are never encrypted (ENC-01)",
            ));
        };
        let addressed =
            Jid::new(to).is_ok_and(|to| to == self.id.peer || to == self.id.peer.to_bare());
        if !addressed {
            return Err(Error::InvalidInput("stanza addressed to someone else"));
        }
        let is_error = stanza_type == Some("error");

        // Serialize everything first: nothing changes unless all of it is usable.
        let mut content = String::new();
        let mut error: Option<(Element, String)> = None;
        for child in plain.children() {
            let client = child.ns() == ns::JABBER_CLIENT;
            match child.name() {
                "error" if client && is_error && error.is_none() => {
                    error = Some(split_error(child)?);
                }
                "error" if client => {
                    return Err(Error::InvalidInput(
                        "<error/> belongs once in a type='error' stanza",
                    ));
                }
                "thread" if client => {
                    return Err(Error::InvalidInput("presence and iq carry no <thread/>"));
                }
                _ if child.is("amp", ns::AMP) => {
                    return Err(Error::InvalidInput("<amp/> is for messages only"));
                }
                _ if is_c(child) => {
                    return Err(Error::InvalidInput("stanza already contains <c/>"));
                }
                _ => content.push_str(&serialize(child)?),
            }
        }
        if is_error && error.is_none() {
            return Err(Error::InvalidInput("type='error' needs an <error/>"));
        }

        // ENC-03: the top-level <c/> first, then the one inside <error/>
        // (the receiver counts in this order too). The top-level one is always there
        // (AMB-26), the inner one only when there is something to hide. Both
        // go through the same key set and block accounting (proposed AMB-63).
        let mut parts = vec![content];
        let clear_error = error.map(|(clear, inner)| {
            if !inner.is_empty() {
                parts.push(inner);
            }
            clear
        });
        let sealed = self.seal_parts(parts, Purpose::Content, rng, now)?;
        let mut cs = sealed.parts.into_iter();
        let top = cs.next().ok_or(Error::InvalidInput("nothing to seal"))?;
        let mut stanza = Element::bare(kind.name(), ns::JABBER_CLIENT);
        if let Some(from) = &self.own_jid {
            set_attr(&mut stanza, "from", from);
        }
        set_attr(&mut stanza, "to", self.id.peer.as_str());
        if let Some(stanza_type) = stanza_type {
            set_attr(&mut stanza, "type", stanza_type);
        }
        if let Some(id) = id {
            set_attr(&mut stanza, "id", id);
        }
        stanza.append_child(top);
        if let Some(mut clear) = clear_error {
            if let Some(inner) = cs.next() {
                clear.append_child(inner);
            }
            stanza.append_child(clear);
        }
        let mut stanzas = sealed.before;
        stanzas.push(stanza);
        Ok(stanzas)
    }

    /// Verifies, decrypts and restores an encrypted presence or iq (ENC-03,
    /// ENC-12/13): exactly one top-level `<c/>`, and at most one inside the
    /// `<error/>` of a type='error' stanza. Every `<c/>` is verified (the
    /// top-level one first), before anything is decompressed or committed. Clear
    /// children other than `<error/>` are unauthenticated and not delivered.
    /// Both `<c/>` must have chosen the same key set and only the top-level
    /// one may carry `<key/>` (proposed AMB-63); its `<key/>` is accepted only
    /// once everything verified and checked, and the counter, the key set
    /// choice and the new keys are committed once, for the whole stanza.
    pub(crate) fn open_unthreaded(
        &mut self,
        stanza: &Element,
        now: u64,
    ) -> Result<Element, OpenFailure> {
        use OpenFailure::{Invalid, Unauthenticated};
        let is_error = stanza.attr("type") == Some("error");
        let mut tops = stanza.children().filter(|c| is_c(c));
        let top = tops.next().ok_or(Unauthenticated)?;
        if tops.next().is_some() {
            return Err(Unauthenticated); // ENC-03: one top-level <c/>.
        }
        let mut errors = stanza
            .children()
            .filter(|c| c.is("error", ns::JABBER_CLIENT));
        let error = errors.next();
        if errors.next().is_some() {
            return Err(Unauthenticated);
        }
        let inner = match error {
            Some(error) => {
                let mut inner = error.children().filter(|c| is_c(c));
                let first = inner.next();
                if inner.next().is_some() || (first.is_some() && !is_error) {
                    return Err(Unauthenticated); // ENC-03: one inner <c/>, error stanzas only.
                }
                first
            }
            None => None,
        };
        // ENC-03 [IMPL]: counters in the order of sealing, the top-level <c/>
        // first, then the one inside <error/>, wherever the <error/> stands in
        // the document: stanza libraries re-serialize an `<iq type='error'/>`
        // with its <error/> first (xmpp-parsers does, on both ends of
        // tokio-xmpp), and a fixed order binds each <c/> to its place, so
        // their contents cannot be swapped.
        let start = self.receive_counter;
        let mut counter = start;
        let mut used = self.receive_used;
        let top = self.unseal_content(top, &mut counter, &mut used, now)?;
        let inner = inner
            .map(|inner| self.unseal_content(inner, &mut counter, &mut used, now))
            .transpose()?;
        // Proposed AMB-63: one key set per stanza, <key/> only at the top. Both
        // MACs verified, so the peer really sent this: it is out of step.
        if inner
            .as_ref()
            .is_some_and(|inner| inner.set != top.set || inner.key.is_some())
        {
            return Err(Invalid);
        }
        let (set, key, top_data) = (top.set, top.key, top.data);
        let inner_data = inner.map(|inner| inner.data);
        // All authenticated: decompress in the order of sealing.
        let top_children = self.inflate(top_data)?;
        let inner_children = inner_data.map(|d| self.inflate(d)).transpose()?;
        if inner_children.iter().flatten().any(is_defined_condition) {
            return Err(Invalid); // ENC-02: the defined condition is never encrypted.
        }
        // ENC-18, AMB-27: the <key/> last, once everything else checked out.
        let accepted = self.accept_key(set, key.as_deref(), now)?;
        self.commit_receive(set, start, (counter, used), accepted, now);

        let mut out = Element::bare(stanza.name(), ns::JABBER_CLIENT);
        *out.attrs_mut() = stanza.attrs().clone();
        let mut top_children = Some(top_children);
        let mut inner_children = inner_children;
        for child in stanza.children() {
            if is_c(child) {
                for el in top_children.take().into_iter().flatten() {
                    out.append_child(el);
                }
            } else if is_error && child.is("error", ns::JABBER_CLIENT) {
                let mut error = Element::bare("error", ns::JABBER_CLIENT);
                *error.attrs_mut() = child.attrs().clone();
                for part in child.children() {
                    if is_c(part) {
                        for el in inner_children.take().into_iter().flatten() {
                            error.append_child(el);
                        }
                    } else if is_defined_condition(part) {
                        error.append_child(part.clone());
                    }
                }
                out.append_child(error);
            }
            // Anything else arrived in clear beside the <c/>: unauthenticated,
            // so not delivered (a server's <delay/> stays in the raw stanza).
        }
        Ok(out)
    }
}

/// ENC-02/03: the `<error/>` element with its attributes and its defined
/// condition (exactly one, RFC 6120) in clear, and the serialized rest (an
/// application condition, `<text/>`) for the inner `<c/>`.
fn split_error(error: &Element) -> Result<(Element, String), Error> {
    let mut clear = Element::bare("error", ns::JABBER_CLIENT);
    *clear.attrs_mut() = error.attrs().clone();
    let mut conditions = 0usize;
    let mut inner = String::new();
    for child in error.children() {
        if is_c(child) {
            return Err(Error::InvalidInput("<error/> already contains <c/>"));
        }
        if is_defined_condition(child) {
            conditions += 1;
            clear.append_child(child.clone());
        } else {
            inner.push_str(&serialize(child)?);
        }
    }
    if conditions != 1 {
        return Err(Error::InvalidInput(
            "<error/> needs exactly one defined condition",
        ));
    }
    Ok((clear, inner))
}
