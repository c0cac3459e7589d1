//! XEP-0189 keys over XEP-0163 personal eventing (PKP-04/05, AMB-66/67): publishing our key
//! and revocations to our own PEP nodes, and fetching a contact's.
//!
//! Our key is item `current` of node `urn:xmpp:pubkey:2`, published with access model
//! `presence`: contacts who see our presence can read it, strangers cannot (a published key is
//! a long-term identity, and the 4-message negotiation hides the responder's identity from
//! strangers; an open node would give that away). A revocation is published under
//! `urn:xmpp:revoke:2`, item id the hex of the revoked key's print, with the same access.
//!
//! What is fetched is only read here; [`esession::published`] decides what may be used.

use esession_wire::minidom::Element;
use esession_wire::pubkey::{
    ATTEST_NS, Attestation, PUBKEY_NS, PublishedKey, REVOKE_NS, Revocation,
};
use tokio_xmpp::jid::{BareJid, FullJid, Jid};
use tokio_xmpp::parsers::data_forms::{DataForm, DataFormType, Field, FieldType};
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::pubsub::pubsub::{
    Configure, Create, Item, Items, PubSub, Publish, PublishOptions, Retract,
};
use tokio_xmpp::parsers::pubsub::{ItemId, NodeName};
use tokio_xmpp::parsers::stanza_error::DefinedCondition;

use super::{EsessionClient, IqFailure};
use crate::layer::ClientError;

/// Items fetched from one node at most (a hostile account could publish thousands).
const MAX_ITEMS: u32 = 32;

/// What a contact published under the XEP-0189 nodes, read but not yet judged.
#[derive(Clone, Debug, Default)]
pub struct FetchedKeys {
    /// Every `<pubkey/>` that parsed.
    pub keys: Vec<PublishedKey>,
    /// Every `<revoke/>` that parsed.
    pub revocations: Vec<Revocation>,
    /// Every `<attest/>` that parsed: signed copies of the contact's keys (PKP-05/06),
    /// not yet verified (see [`esession::published::check_attestation`]).
    pub attestations: Vec<Attestation>,
    /// Items that did not parse (shown as a count, never used).
    pub unreadable: usize,
}

/// The publish-options form: readable by contacts who see our presence.
fn presence_access() -> PublishOptions {
    let form = DataForm::new(
        DataFormType::Submit,
        "http://jabber.org/protocol/pubsub#publish-options",
        vec![Field::new("pubsub#access_model", FieldType::ListSingle).with_value("presence")],
    );
    PublishOptions { form: Some(form) }
}

/// The node configuration of an XEP-0187 option set (OFF-06, AMB-36/76): readable by
/// contacts who see our presence, never pushed to them (a sender fetches when it needs it).
fn options_node_config() -> DataForm {
    DataForm::new(
        DataFormType::Submit,
        "http://jabber.org/protocol/pubsub#node_config",
        vec![
            Field::new("pubsub#access_model", FieldType::ListSingle).with_value("presence"),
            Field::new("pubsub#send_last_published_item", FieldType::ListSingle)
                .with_value("never"),
            Field::new("pubsub#deliver_notifications", FieldType::Boolean).with_value("0"),
        ],
    )
}

/// What went wrong with a PEP request, for a person.
fn pep_error(what: &str, failure: IqFailure) -> ClientError {
    match failure {
        IqFailure::Unusable(error) => error,
        IqFailure::TimedOut => {
            ClientError::Pep(format!("{what}: the server did not answer within 10 s"))
        }
        IqFailure::Refused(DefinedCondition::ItemNotFound) => {
            ClientError::Pep(format!("{what}: nothing is published there"))
        }
        IqFailure::Refused(DefinedCondition::Forbidden | DefinedCondition::NotAuthorized) => {
            ClientError::Pep(format!(
                "{what}: not allowed (keys are readable only by contacts who share presence)"
            ))
        }
        IqFailure::Refused(
            DefinedCondition::FeatureNotImplemented | DefinedCondition::ServiceUnavailable,
        ) => ClientError::Pep(format!("{what}: the server has no personal eventing (PEP)")),
        IqFailure::Refused(DefinedCondition::Conflict) => ClientError::Pep(format!(
            "{what}: the node exists with another access model; remove it and publish again"
        )),
        IqFailure::Refused(_) => ClientError::Pep(format!("{what}: the server refused it")),
    }
}

impl EsessionClient {
    /// Publishes `key` as item `current` of our node `urn:xmpp:pubkey:2` (PKP-04), replacing
    /// what was there.
    /// It then also answers a request for this device's key (PKP-07).
    pub async fn publish_key(&mut self, key: &PublishedKey) -> Result<(), ClientError> {
        self.publish(PUBKEY_NS, "current", Element::from(key))
            .await?;
        self.layer.set_device_key(Some(key.clone()));
        Ok(())
    }

    /// Publishes `revocation` under `urn:xmpp:revoke:2` (PKP-05, AMB-66).
    pub async fn publish_revocation(&mut self, revocation: &Revocation) -> Result<(), ClientError> {
        let id = revocation
            .revoked_print()
            .map(|print| print.iter().map(|b| format!("{b:02x}")).collect::<String>())
            .map_err(|_| ClientError::Pep("the revocation names no key print".to_owned()))?;
        self.publish(REVOKE_NS, &id, Element::from(revocation))
            .await
    }

    /// Publishes a signed copy of one of our keys (XEP-0189 attestation, PKP-05) that
    /// someone gave us, as an item of `urn:xmpp:attest:2` named by the signer's print.
    pub async fn publish_attestation(
        &mut self,
        attestation: &Attestation,
    ) -> Result<(), ClientError> {
        let id = attestation
            .signer_print()
            .map(|print| print.iter().map(|b| format!("{b:02x}")).collect::<String>())
            .map_err(|_| ClientError::Pep("the attestation names no signer print".to_owned()))?;
        self.publish(ATTEST_NS, &id, Element::from(attestation))
            .await
    }

    async fn publish(
        &mut self,
        node: &str,
        item: &str,
        payload: Element,
    ) -> Result<(), ClientError> {
        let request = PubSub::Publish {
            publish: Publish {
                node: NodeName(node.to_owned()),
                items: vec![Item {
                    id: Some(ItemId(item.to_owned())),
                    publisher: None,
                    payload: Some(payload),
                }],
            },
            publish_options: Some(presence_access()),
        };
        let id = self.layer.next_iq_id("pep");
        self.round_trip(Iq::from_set(id, request), None)
            .await
            .map(|_| ())
            .map_err(|failure| pep_error(&format!("publishing to {node}"), failure))
    }

    /// Asks the client at `device` (a full JID) for its key directly (PKP-07, AMB-68): the
    /// key, or `None` when it has none to give.
    pub async fn request_device_key(
        &mut self,
        device: &FullJid,
    ) -> Result<Option<PublishedKey>, ClientError> {
        let to = Jid::from(device.clone());
        let id = self.layer.next_iq_id("pubkey");
        let request = Iq::Get {
            from: None,
            to: Some(to.clone()),
            id,
            payload: Element::builder("pubkey", PUBKEY_NS).build(),
        };
        match self.round_trip(request, Some(&to)).await {
            Ok(Some(payload)) => PublishedKey::try_from(&payload).map(Some).map_err(|e| {
                ClientError::Pep(format!("{device} answered with an unreadable key ({e})"))
            }),
            Ok(None) | Err(IqFailure::Refused(_)) => Ok(None),
            Err(failure) => Err(pep_error(&format!("asking {device} for its key"), failure)),
        }
    }

    /// XEP-0187 (OFF-06, AMB-76): publishes a signed option set as item `current` of our
    /// subscriber node, creating and configuring the node first (one that already exists is
    /// used as it is).
    pub async fn publish_offline_options(&mut self, options: &Element) -> Result<(), ClientError> {
        let node = esession_wire::ns::OFFLINE_ESESSION;
        let create = PubSub::Create {
            create: Create {
                node: Some(NodeName(node.to_owned())),
            },
            configure: Some(Configure {
                form: Some(options_node_config()),
            }),
        };
        let id = self.layer.next_iq_id("pep");
        match self.round_trip(Iq::from_set(id, create), None).await {
            Ok(_) | Err(IqFailure::Refused(DefinedCondition::Conflict)) => {}
            Err(failure) => return Err(pep_error(&format!("creating {node}"), failure)),
        }
        let request = PubSub::Publish {
            publish: Publish {
                node: NodeName(node.to_owned()),
                items: vec![Item {
                    id: Some(ItemId("current".to_owned())),
                    publisher: None,
                    payload: Some(options.clone()),
                }],
            },
            publish_options: None,
        };
        let id = self.layer.next_iq_id("pep");
        self.round_trip(Iq::from_set(id, request), None)
            .await
            .map(|_| ())
            .map_err(|failure| pep_error(&format!("publishing to {node}"), failure))
    }

    /// XEP-0187 (OFF-13, AMB-36): withdraws our published option set (retracts item
    /// `current` of the subscriber node) on our return.
    pub async fn retract_offline_options(&mut self) -> Result<(), ClientError> {
        let node = esession_wire::ns::OFFLINE_ESESSION;
        let request = PubSub::Retract(Retract {
            node: NodeName(node.to_owned()),
            notify: false,
            items: vec![Item {
                id: Some(ItemId("current".to_owned())),
                publisher: None,
                payload: None,
            }],
        });
        let id = self.layer.next_iq_id("pep");
        self.round_trip(Iq::from_set(id, request), None)
            .await
            .map(|_| ())
            .map_err(|failure| pep_error(&format!("withdrawing {node}"), failure))
    }

    /// XEP-0187 (OFF-07, AMB-77): the option sets `contact` published, the subscriber node's
    /// first, the public node's when that one is empty or refused. Not yet checked: see
    /// [`esession::offline::check_options`].
    pub async fn fetch_offline_options(
        &mut self,
        contact: &BareJid,
    ) -> Result<Vec<Element>, ClientError> {
        let subscriber = self
            .fetch_items(contact, esession_wire::ns::OFFLINE_ESESSION)
            .await
            .unwrap_or_default();
        let options: Vec<Element> = subscriber
            .into_iter()
            .filter(|x| x.is("x", esession_wire::ns::DATA_FORMS))
            .collect();
        if !options.is_empty() {
            return Ok(options);
        }
        Ok(self
            .fetch_items(contact, esession_wire::ns::ESESSION)
            .await?
            .into_iter()
            .filter(|x| x.is("x", esession_wire::ns::DATA_FORMS))
            .collect())
    }

    /// Fetches what `contact` published under `urn:xmpp:pubkey:2` and `urn:xmpp:revoke:2`.
    /// A node that does not exist counts as empty.
    pub async fn fetch_keys(&mut self, contact: &BareJid) -> Result<FetchedKeys, ClientError> {
        let mut fetched = FetchedKeys::default();
        for payload in self.fetch_items(contact, PUBKEY_NS).await? {
            match PublishedKey::try_from(&payload) {
                Ok(key) => fetched.keys.push(key),
                Err(_) => fetched.unreadable += 1,
            }
        }
        for payload in self.fetch_items(contact, REVOKE_NS).await? {
            match Revocation::try_from(&payload) {
                Ok(revocation) => fetched.revocations.push(revocation),
                Err(_) => fetched.unreadable += 1,
            }
        }
        for payload in self.fetch_items(contact, ATTEST_NS).await? {
            match Attestation::try_from(&payload) {
                Ok(attestation) => fetched.attestations.push(attestation),
                Err(_) => fetched.unreadable += 1,
            }
        }
        Ok(fetched)
    }

    async fn fetch_items(
        &mut self,
        contact: &BareJid,
        node: &str,
    ) -> Result<Vec<Element>, ClientError> {
        let request = PubSub::Items(Items {
            max_items: Some(MAX_ITEMS),
            node: NodeName(node.to_owned()),
            subid: None,
            items: Vec::new(),
        });
        let to = Jid::from(contact.clone());
        let id = self.layer.next_iq_id("pep");
        let what = format!("fetching {node} of {contact}");
        let payload = match self
            .round_trip(Iq::from_get(id, request).with_to(to.clone()), Some(&to))
            .await
        {
            Ok(payload) => payload,
            Err(IqFailure::Refused(DefinedCondition::ItemNotFound)) => return Ok(Vec::new()),
            Err(failure) => return Err(pep_error(&what, failure)),
        };
        let Some(payload) = payload else {
            return Ok(Vec::new());
        };
        let items = match PubSub::try_from(payload) {
            Ok(PubSub::Items(items)) => items.items,
            _ => {
                return Err(ClientError::Pep(format!(
                    "{what}: the answer is not a list of items"
                )));
            }
        };
        Ok(items
            .into_iter()
            .take(MAX_ITEMS as usize)
            .filter_map(|item| item.payload)
            .collect())
    }
}
