//! Issue 11: stanzas nested deeper than any real payload. The server relays
//! whatever nesting fits in its stanza size limit (Prosody: 256 KiB, about
//! 36,000 levels) from any user. Building such a stanza is iterative (our
//! xso patch, `vendor/xso`), but minidom drops, clones and compares elements
//! recursively, one native stack frame per level: on a 2 MiB tokio worker
//! that aborts the process. So a received stanza deeper than
//! [`MAX_STANZA_DEPTH`] is taken apart here without recursion and never
//! reaches the core or the application.

use tokio_xmpp::Stanza;
use tokio_xmpp::minidom::{Element, Node};
use tokio_xmpp::parsers::iq::Iq;

/// Element nesting accepted below the stanza element: real payloads stay
/// within a dozen levels (XHTML-IM, forms, pubsub items).
pub(crate) const MAX_STANZA_DEPTH: usize = 128;

/// The payload elements of a stanza (what nests).
fn payloads(stanza: &Stanza) -> Vec<&Element> {
    match stanza {
        Stanza::Message(m) => m.payloads.iter().collect(),
        Stanza::Presence(p) => p.payloads.iter().collect(),
        Stanza::Iq(iq) => match iq {
            Iq::Get { payload, .. } | Iq::Set { payload, .. } => vec![payload],
            Iq::Result { payload, .. } => payload.iter().collect(),
            Iq::Error { payload, .. } => payload.iter().collect(),
        },
    }
}

/// Whether some element of `stanza` lies deeper than `max` below it.
pub(crate) fn too_deep(stanza: &Stanza, max: usize) -> bool {
    let mut todo: Vec<(&Element, usize)> = payloads(stanza).into_iter().map(|e| (e, 1)).collect();
    while let Some((element, depth)) = todo.pop() {
        if depth > max {
            return true;
        }
        todo.extend(element.children().map(|c| (c, depth + 1)));
    }
    false
}

/// Drops `stanza` without recursing into its elements.
pub(crate) fn dispose(stanza: Stanza) {
    let mut todo: Vec<Element> = match stanza {
        Stanza::Message(m) => m.payloads,
        Stanza::Presence(p) => p.payloads,
        Stanza::Iq(iq) => match iq {
            Iq::Get { payload, .. } | Iq::Set { payload, .. } => vec![payload],
            Iq::Result { payload, .. } => payload.into_iter().collect(),
            Iq::Error { payload, .. } => payload.into_iter().collect(),
        },
    };
    while let Some(mut element) = todo.pop() {
        for node in element.take_nodes() {
            if let Node::Element(child) = node {
                todo.push(child);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_xmpp::parsers::message::Message;

    fn nested(depth: usize) -> Element {
        let mut element = Element::bare("a", "urn:example:deep");
        for _ in 1..depth {
            let mut outer = Element::bare("a", "urn:example:deep");
            outer.append_child(element);
            element = outer;
        }
        element
    }

    fn message_with(payload: Element) -> Stanza {
        let mut message = Message::new(None);
        message.payloads.push(payload);
        Stanza::Message(message)
    }

    #[test]
    fn the_depth_limit_counts_levels_below_the_stanza() {
        assert!(!too_deep(
            &message_with(nested(MAX_STANZA_DEPTH)),
            MAX_STANZA_DEPTH
        ));
        assert!(too_deep(
            &message_with(nested(MAX_STANZA_DEPTH + 1)),
            MAX_STANZA_DEPTH
        ));
    }

    #[test]
    fn a_very_deep_stanza_is_disposed_of_on_a_small_stack() {
        // 200,000 levels on a 256 KiB thread: recursion would overflow.
        let handle = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(|| {
                // Built iteratively (each level wraps the previous one).
                let stanza = message_with(nested(200_000));
                assert!(too_deep(&stanza, MAX_STANZA_DEPTH));
                dispose(stanza);
            })
            .unwrap();
        handle.join().unwrap();
    }
}
