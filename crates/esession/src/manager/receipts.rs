//! Delivery receipts inside the encryption (issue 10): XEP-0184 `<request/>`
//! and `<received/>`, keyed by a XEP-0359 `<origin-id/>` that travels
//! encrypted too, so neither the server nor anyone on the path can forge,
//! suppress or re-target an acknowledgement. A message delivered once is never
//! delivered again: a resend (its receipt was lost) is acknowledged again and
//! dropped.

use esession_wire::minidom::Element;

use super::Keep;
use crate::event::{Event, Output};
use crate::random::{RandomPurpose, Randomness};
use crate::session::EstablishedSession;
use crate::stanza::{message, set_attr};
use crate::trust::TrustStore;

/// XEP-0184 message delivery receipts.
pub(crate) const RECEIPTS_NS: &str = "urn:xmpp:receipts";
/// XEP-0359 unique and stable stanza IDs.
pub(crate) const SID_NS: &str = "urn:xmpp:sid:0";

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

/// The encrypted id of a decrypted message, if it has a usable one.
fn origin_id(message: &Element) -> Option<&str> {
    message
        .get_child("origin-id", SID_NS)
        .and_then(|o| o.attr("id"))
        .filter(|id| !id.is_empty() && id.len() <= MAX_ID_LEN)
}

/// A decrypted, authenticated message: a receipt becomes
/// [`Event::MessageDelivered`]; a request is acknowledged (encrypted, ENC-01)
/// and the message delivered unless the trust store recorded its id before
/// (a resend whose receipt was lost, even across our restart). A store that
/// fails is reported and the message delivered: shown twice rather than lost.
pub(super) fn on_message(
    session: &mut EstablishedSession,
    message: Element,
    unauthenticated_error: Option<Element>,
    trust: &mut dyn TrustStore,
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
        Some(origin) => trust
            .record_delivery(id.peer.to_bare().as_str(), origin)
            .unwrap_or_else(|error| {
                out.event(Event::TrustStoreFailure { error });
                true
            }),
        None => true,
    };
    if requested && let Some(origin) = origin_id(&message) {
        // XEP-0184 §5: no request on the receipt itself, no body.
        let mut receipt = message_to(id.peer.as_str());
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
            unauthenticated_error,
        });
    }
    Keep::Keep
}

fn message_to(peer: &str) -> Element {
    message(peer, None, Some("chat"))
}
