//! The roster (RFC 6121) as the core needs it: which contacts are subscribed
//! to our presence (SSN-09, ESN-07), fed to
//! [`esession::SessionManager::set_presence_subscription`]. The roster is
//! requested at login; the server's roster pushes (RFC 6121 §2.1.6) carry
//! every later change, including the subscription changes of §3.

use esession_wire::minidom::Element;
use esession_wire::ns;

/// The roster namespace.
const ROSTER_NS: &str = "jabber:iq:roster";
/// The id of our roster request.
pub(crate) const REQUEST_ID: &str = "esession-roster";

/// The roster request sent at login, before initial presence (RFC 6121 §2.2).
pub(crate) fn request() -> Element {
    let mut iq = bare_iq("get", REQUEST_ID);
    iq.append_child(Element::bare("query", ROSTER_NS));
    iq
}

/// `<iq type=kind id=id/>` (attribute names are valid, values any text).
fn bare_iq(kind: &str, id: &str) -> Element {
    let mut iq = Element::bare("iq", ns::JABBER_CLIENT);
    let _ = esession_wire::xml::set_attr(&mut iq, "type", kind);
    let _ = esession_wire::xml::set_attr(&mut iq, "id", id);
    iq
}

/// What a roster stanza says.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Update {
    /// The whole roster (our request's result): forget what was known.
    pub(crate) full: bool,
    /// (bare JID, subscribed to our presence) per item.
    pub(crate) items: Vec<(String, bool)>,
    /// The result a roster push must get.
    pub(crate) reply: Option<Element>,
}

/// Reads the result of our roster request, or a roster push from our own
/// server (no `from`, or our bare JID: RFC 6121 §2.1.6 says to ignore any
/// other); `None` for anything else.
pub(crate) fn update(iq: &Element, own_jid: Option<&str>) -> Option<Update> {
    if !iq.is("iq", ns::JABBER_CLIENT) {
        return None;
    }
    let own_bare = own_jid.map(bare);
    if iq.attr("from").is_some_and(|from| Some(from) != own_bare) {
        return None;
    }
    let query = iq.get_child("query", ROSTER_NS);
    let items = |query: &Element| -> Vec<(String, bool)> {
        query
            .children()
            .filter(|c| c.is("item", ROSTER_NS))
            .filter_map(|item| {
                let jid = bare(item.attr("jid")?).to_owned();
                // `from` and `both`: the contact receives our presence.
                let subscribed = matches!(item.attr("subscription"), Some("from" | "both"));
                Some((jid, subscribed))
            })
            .collect()
    };
    match (iq.attr("type"), iq.attr("id")) {
        (Some("result"), Some(REQUEST_ID)) => Some(Update {
            full: true,
            items: query.map(items).unwrap_or_default(),
            reply: None,
        }),
        (Some("set"), Some(id)) => {
            let query = query?;
            Some(Update {
                full: false,
                items: items(query),
                reply: Some(bare_iq("result", id)),
            })
        }
        _ => None,
    }
}

fn bare(jid: &str) -> &str {
    jid.split_once('/').map_or(jid, |(b, _)| b)
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        reason = "test code"
    )]

    use super::*;

    const ME: &str = "me@example.org/cli";

    fn parse(xml: &str) -> Element {
        xml.parse().unwrap()
    }

    #[test]
    fn the_request_is_a_roster_get() {
        let iq = request();
        assert_eq!(iq.attr("type"), Some("get"));
        assert_eq!(iq.attr("id"), Some(REQUEST_ID));
        assert!(iq.has_child("query", ROSTER_NS));
    }

    #[test]
    fn the_roster_result_says_who_is_subscribed_to_our_presence() {
        // RFC 6121 §2.1.2.5: `from` and `both` mean the contact has a
        // subscription to our presence; `to`, `none` (and no attribute) not.
        let iq = parse(&format!(
            "<iq xmlns='jabber:client' type='result' id='{REQUEST_ID}' to='{ME}'>\
             <query xmlns='jabber:iq:roster' ver='1'>\
             <item jid='a@x' subscription='both'/><item jid='b@x' subscription='from'/>\
             <item jid='c@x' subscription='to'/><item jid='d@x' subscription='none'/>\
             <item jid='e@x'/><item subscription='both'/></query></iq>"
        ));
        let update = update(&iq, Some(ME)).unwrap();
        assert!(update.full);
        assert_eq!(
            update.items,
            [
                ("a@x".to_owned(), true),
                ("b@x".to_owned(), true),
                ("c@x".to_owned(), false),
                ("d@x".to_owned(), false),
                ("e@x".to_owned(), false),
            ]
        );
        assert_eq!(update.reply, None);
    }

    #[test]
    fn a_push_from_our_server_updates_and_is_answered() {
        for from in ["", " from='me@example.org'"] {
            let iq = parse(&format!(
                "<iq xmlns='jabber:client' type='set' id='push1'{from}>\
                 <query xmlns='jabber:iq:roster'>\
                 <item jid='a@x' subscription='remove'/></query></iq>"
            ));
            let update = update(&iq, Some(ME)).unwrap();
            assert!(!update.full);
            assert_eq!(update.items, [("a@x".to_owned(), false)]);
            let reply = update.reply.unwrap();
            assert_eq!(reply.attr("type"), Some("result"));
            assert_eq!(reply.attr("id"), Some("push1"));
        }
    }

    #[test]
    fn pushes_from_anyone_else_and_other_results_are_not_roster_updates() {
        for iq in [
            // RFC 6121 §2.1.6: a push from another entity is ignored.
            "<iq xmlns='jabber:client' type='set' id='p' from='mallory@x'>\
             <query xmlns='jabber:iq:roster'><item jid='mallory@x' subscription='both'/></query></iq>",
            "<iq xmlns='jabber:client' type='set' id='p' from='me@example.org/other'>\
             <query xmlns='jabber:iq:roster'><item jid='m@x' subscription='both'/></query></iq>",
            // A result to some other request.
            "<iq xmlns='jabber:client' type='result' id='other'>\
             <query xmlns='jabber:iq:roster'><item jid='m@x' subscription='both'/></query></iq>",
            // A set without a roster query.
            "<iq xmlns='jabber:client' type='set' id='p'><ping xmlns='urn:xmpp:ping'/></iq>",
        ] {
            assert_eq!(update(&parse(iq), Some(ME)), None, "{iq}");
        }
    }
}
