//! Issue 15: the roster and presence subscriptions (RFC 6121) from the
//! client: list, add (with a subscription request), remove, and directed
//! presence. Approving a request is `EsessionClient::approve_subscription`.

use tokio_xmpp::jid::{BareJid, Jid};
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::presence::{Presence, Type as PresenceType};
use tokio_xmpp::parsers::roster::{Ask, Item, Roster, Subscription};

use super::{EsessionClient, IqFailure};
use crate::layer::ClientError;

/// One contact of the roster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RosterEntry {
    /// The contact.
    pub jid: BareJid,
    /// The name we gave them, if any.
    pub name: Option<String>,
    /// `none`, `from` (they see our presence), `to` (we see theirs) or `both`.
    pub subscription: &'static str,
    /// We asked to see their presence and they have not answered yet.
    pub pending: bool,
}

fn roster_error(what: &str, failure: IqFailure) -> ClientError {
    match failure {
        IqFailure::Unusable(error) => error,
        IqFailure::TimedOut => {
            ClientError::Roster(format!("{what}: the server did not answer within 10 s"))
        }
        IqFailure::Refused(condition) => {
            let name = tokio_xmpp::minidom::Element::from(condition)
                .name()
                .to_owned();
            ClientError::Roster(format!("{what}: the server answered {name}"))
        }
    }
}

impl EsessionClient {
    /// Our roster, as the server holds it.
    pub async fn roster(&mut self) -> Result<Vec<RosterEntry>, ClientError> {
        let id = self.layer.next_iq_id("roster-list");
        let query = Iq::from_get(
            id,
            Roster {
                ver: None,
                items: Vec::new(),
            },
        );
        let payload = self
            .round_trip(query, None)
            .await
            .map_err(|f| roster_error("reading the roster", f))?;
        let roster = payload
            .map(Roster::try_from)
            .transpose()
            .map_err(|_| ClientError::Roster("the server's roster is unreadable".to_owned()))?;
        Ok(roster
            .map(|r| r.items)
            .unwrap_or_default()
            .into_iter()
            .map(|item| RosterEntry {
                subscription: match item.subscription {
                    Subscription::From => "from",
                    Subscription::To => "to",
                    Subscription::Both => "both",
                    _ => "none",
                },
                pending: item.ask == Ask::Subscribe,
                jid: item.jid,
                name: item.name,
            })
            .collect())
    }

    /// Adds `contact` to the roster (with `name`) and asks to see their
    /// presence; they see ours once we approve their own request.
    pub async fn roster_add(
        &mut self,
        contact: &BareJid,
        name: Option<&str>,
    ) -> Result<(), ClientError> {
        self.roster_set(contact, name, Subscription::None, "adding")
            .await?;
        let request = Presence::new(PresenceType::Subscribe).with_to(Jid::from(contact.clone()));
        self.layer.push_outgoing(request.into());
        self.flush().await;
        Ok(())
    }

    /// Removes `contact` from the roster, which also cancels both subscriptions.
    pub async fn roster_remove(&mut self, contact: &BareJid) -> Result<(), ClientError> {
        self.roster_set(contact, None, Subscription::Remove, "removing")
            .await
    }

    async fn roster_set(
        &mut self,
        contact: &BareJid,
        name: Option<&str>,
        subscription: Subscription,
        doing: &str,
    ) -> Result<(), ClientError> {
        let id = self.layer.next_iq_id("roster-set");
        let item = Item {
            jid: contact.clone(),
            name: name.map(str::to_owned),
            subscription,
            ask: Ask::None,
            groups: Vec::new(),
            approved: None,
        };
        let set = Iq::from_set(
            id,
            Roster {
                ver: None,
                items: vec![item],
            },
        );
        self.round_trip(set, None)
            .await
            .map(|_| ())
            .map_err(|f| roster_error(&format!("{doing} {contact}"), f))
    }

    /// Sends our presence to `to` alone (RFC 6121 §4.6): a contact who is
    /// not subscribed to our presence then sees us online, with our full
    /// JID, until we leave.
    pub async fn send_directed_presence(&mut self, to: &Jid) -> Result<(), ClientError> {
        self.ensure_usable()?;
        let presence = Presence::new(PresenceType::None).with_to(to.clone());
        self.layer.push_outgoing(presence.into());
        self.flush().await;
        Ok(())
    }
}
