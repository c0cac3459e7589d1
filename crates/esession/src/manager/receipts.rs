//! Delivery receipts inside the encryption (issue 10): XEP-0184 `<request/>`
//! and `<received/>`, keyed by a XEP-0359 `<origin-id/>` that travels
//! encrypted too, so neither the server nor anyone on the path can forge,
//! suppress or re-target an acknowledgement. A message delivered once is never
//! delivered again: a resend (its receipt was lost) is acknowledged again and
//! dropped.

use std::collections::{HashMap, VecDeque};

use esession_wire::minidom::Element;

use super::Keep;
use crate::event::{Event, Output};
use crate::random::{RandomPurpose, Randomness};
use crate::session::EstablishedSession;
use crate::stanza::{bare, message, set_attr};

/// XEP-0184 message delivery receipts.
pub(crate) const RECEIPTS_NS: &str = "urn:xmpp:receipts";
/// XEP-0359 unique and stable stanza IDs.
pub(crate) const SID_NS: &str = "urn:xmpp:sid:0";

/// Ids remembered per contact: enough for any burst a resend can repeat.
const IDS_PER_CONTACT: usize = 512;
/// Contacts remembered; the oldest is forgotten beyond this.
const CONTACTS: usize = 1024;
/// Longest id accepted from a peer (ours are 32 hex digits).
const MAX_ID_LEN: usize = 128;

/// A fresh message id: 128 random bits in hex.
pub(crate) fn new_id(rng: &mut dyn Randomness) -> String {
    let mut bytes = [0u8; 16];
    rng.fill(RandomPurpose::MessageId, &mut bytes);
    hex::encode(bytes)
}

/// Adds `<origin-id id/>` and `<request/>` to an outgoing message.
pub(crate) fn request(plain: &mut Element, id: &str) {
    let mut origin = Element::bare("origin-id", SID_NS);
    set_attr(&mut origin, "id", id);
    plain.append_child(origin);
    plain.append_child(Element::bare("request", RECEIPTS_NS));
}

/// Message ids already delivered, per bare JID, oldest first.
#[derive(Default)]
pub(crate) struct DeliveredIds {
    by_contact: HashMap<String, VecDeque<String>>,
    /// Contacts in order of first use, to forget the oldest.
    order: VecDeque<String>,
}

impl DeliveredIds {
    /// Records `id` from `contact`; false if it was delivered before.
    fn first_delivery(&mut self, contact: &str, id: &str) -> bool {
        if !self.by_contact.contains_key(contact) {
            if self.order.len() >= CONTACTS
                && let Some(oldest) = self.order.pop_front()
            {
                self.by_contact.remove(&oldest);
            }
            self.order.push_back(contact.to_owned());
        }
        let ids = self.by_contact.entry(contact.to_owned()).or_default();
        if ids.iter().any(|seen| seen == id) {
            return false;
        }
        if ids.len() >= IDS_PER_CONTACT {
            ids.pop_front();
        }
        ids.push_back(id.to_owned());
        true
    }
}

/// The encrypted id of a decrypted message, if it has a usable one.
fn origin_id(message: &Element) -> Option<&str> {
    message
        .get_child("origin-id", SID_NS)
        .and_then(|o| o.attr("id"))
        .filter(|id| !id.is_empty() && id.len() <= MAX_ID_LEN)
}

/// A decrypted, authenticated message: a receipt becomes
/// [`Event::MessageDelivered`]; a request is acknowledged (encrypted, ENC-01)
/// and the message delivered unless it was delivered before.
pub(super) fn on_message(
    session: &mut EstablishedSession,
    message: Element,
    delivered: &mut DeliveredIds,
    rng: &mut dyn Randomness,
    now: u64,
    out: &mut Output,
) -> Keep {
    let id = session.id().clone();
    let has_body = message.children().any(|c| c.name() == "body");
    if let Some(received) = message.get_child("received", RECEIPTS_NS)
        && let Some(acked) = received.attr("id").filter(|a| a.len() <= MAX_ID_LEN)
    {
        out.event(Event::MessageDelivered {
            session: id.clone(),
            id: acked.to_owned(),
        });
        if !has_body {
            return Keep::Keep;
        }
    }
    let requested = message.get_child("request", RECEIPTS_NS).is_some();
    let first = match origin_id(&message) {
        Some(origin) => delivered.first_delivery(bare(&id.peer), origin),
        None => true,
    };
    if requested && let Some(origin) = origin_id(&message) {
        // XEP-0184 §5: no request on the receipt itself, no body.
        let mut receipt = message_to(&id.peer);
        let mut received = Element::bare("received", RECEIPTS_NS);
        set_attr(&mut received, "id", origin);
        receipt.append_child(received);
        match session.seal_message(&receipt, rng, now) {
            Ok(stanzas) => out.stanzas.extend(stanzas),
            Err(crate::Error::KeysExhausted) => {
                super::keys_exhausted(session, rng, now, out);
                return Keep::Remove;
            }
            // The session is ending: nothing more may be sent (ESN-47).
            Err(_) => {}
        }
    }
    if first {
        out.event(Event::MessageReceived {
            session: id,
            message,
        });
    }
    Keep::Keep
}

fn message_to(peer: &str) -> Element {
    message(peer, None, Some("chat"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_id_is_not_a_first_delivery() {
        let mut ids = DeliveredIds::default();
        assert!(ids.first_delivery("bob@example.com", "a1"));
        assert!(!ids.first_delivery("bob@example.com", "a1"));
        // Per contact: the same id from someone else is theirs.
        assert!(ids.first_delivery("carol@example.com", "a1"));
    }

    #[test]
    fn memory_is_bounded_per_contact_and_in_contacts() {
        let mut ids = DeliveredIds::default();
        for i in 0..(IDS_PER_CONTACT + 10) {
            assert!(ids.first_delivery("bob@example.com", &i.to_string()));
        }
        assert_eq!(
            ids.by_contact.get("bob@example.com").map(VecDeque::len),
            Some(IDS_PER_CONTACT)
        );
        for i in 0..(CONTACTS + 5) {
            ids.first_delivery(&format!("c{i}@example.com"), "x");
        }
        assert_eq!(ids.by_contact.len(), CONTACTS);
        assert_eq!(ids.order.len(), CONTACTS);
    }
}
