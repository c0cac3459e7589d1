//! Issue 14: confirming what our server archives before anything is promised
//! off the record (ARC-07, SSN-03); see [`crate::archive`].

use tokio_xmpp::jid::Jid;
use tokio_xmpp::parsers::disco::{DiscoInfoQuery, DiscoInfoResult};
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::mam_prefs::Prefs;

use super::{EsessionClient, IqFailure};
use crate::archive::{self, ServerArchive};
use crate::layer::ClientError;

impl EsessionClient {
    /// Finds out what our server archives and whether a session can be kept
    /// out of it, and tells the core (only then is `logging=mustnot`
    /// offered or accepted, ARC-07). Call it after every
    /// [`crate::ClientEvent::Online`] and [`crate::ClientEvent::Reconnected`]:
    ///
    /// - our account advertises XEP-0313: the preferences are read and
    ///   written back unchanged, which proves we may change them;
    /// - our server advertises XEP-0136 automatic archiving: it is turned off
    ///   for this stream (ARC-07/09);
    /// - neither: the server keeps no archive.
    ///
    /// A server that refuses is [`ServerArchive::Refused`], with what it said.
    pub async fn check_server_archive(&mut self) -> Result<ServerArchive, ClientError> {
        let own = self
            .own_jid()
            .and_then(|j| Jid::new(j).ok())
            .ok_or_else(|| ClientError::Disco("our own account (not online yet)".to_owned()))?;
        let account = Jid::from(own.to_bare());
        let server = Jid::from(own.domain().to_owned());
        // Fails closed: what we could not discover is not "no archive".
        let mut kind = match self.features_of(&account).await? {
            Some(features) => archive::archive_kind(&features),
            None => undiscovered(&account),
        };
        if kind == ServerArchive::None {
            kind = match self.features_of(&server).await? {
                Some(features) => archive::archive_kind(&features),
                None => undiscovered(&server),
            };
        }
        let (server, prefs) = match kind {
            ServerArchive::Mam => self.confirm_mam().await?,
            ServerArchive::Xep0136 => (self.confirm_auto_archiving_off().await?, None),
            other => (other, None),
        };
        tracing::info!(archive = %server.describe(), "server archive checked");
        self.layer.set_server_archive(server.clone(), prefs);
        Ok(server)
    }

    /// Sets the off-the-record policy (ARC-02) for `contact`, or the default
    /// one with `None`, and sends the terminations of the sessions it no
    /// longer allows (ARC-05).
    pub async fn set_otr_policy(&mut self, contact: Option<&str>, policy: esession::OtrPolicy) {
        self.layer.set_otr_policy(contact, policy);
        self.flush().await;
    }

    /// What our server archives, as [`Self::check_server_archive`] found.
    pub fn server_archive(&self) -> &ServerArchive {
        self.layer.server_archive()
    }

    /// Whether `session` is kept out of the server's archive.
    pub fn is_off_the_record(&self, session: &esession::SessionId) -> bool {
        self.layer.is_off_the_record(session)
    }

    /// The features `jid` advertises; `None` when it answered with an error
    /// or nothing.
    async fn features_of(&mut self, jid: &Jid) -> Result<Option<Vec<String>>, ClientError> {
        let id = self.layer.next_iq_id("disco");
        let query = Iq::from_get(id, DiscoInfoQuery { node: None }).with_to(jid.clone());
        let failed = || ClientError::Disco(jid.to_string());
        match self.round_trip(query, Some(jid)).await {
            Err(IqFailure::Unusable(error)) => Err(error),
            Err(IqFailure::TimedOut) => Err(failed()),
            Ok(Some(payload)) => {
                let info = DiscoInfoResult::try_from(payload).map_err(|_| failed())?;
                Ok(Some(info.features.into_iter().collect()))
            }
            Err(IqFailure::Refused(_)) | Ok(None) => Ok(None),
        }
    }

    /// XEP-0313: reads the preferences and writes them back unchanged.
    async fn confirm_mam(&mut self) -> Result<(ServerArchive, Option<Prefs>), ClientError> {
        let id = self.layer.next_iq_id("archive");
        let get = Iq::Get {
            from: None,
            to: None,
            id,
            payload: archive::prefs_query(),
        };
        let prefs = match self.round_trip(get, None).await {
            Ok(Some(payload)) => Prefs::try_from(payload).ok(),
            Ok(None) => None,
            Err(IqFailure::Unusable(error)) => return Err(error),
            Err(failure) => {
                return Ok((
                    refused("a request for its archive preferences", &failure),
                    None,
                ));
            }
        };
        let Some(prefs) = prefs else {
            let why = "the server archives messages, and its archive preferences could not be read"
                .to_owned();
            return Ok((ServerArchive::Refused(why), None));
        };
        let id = self.layer.next_iq_id("archive");
        let set = Iq::Set {
            from: None,
            to: None,
            id,
            payload: archive::prefs_unchanged(&prefs),
        };
        match self.round_trip(set, None).await {
            Ok(_) => Ok((ServerArchive::Mam, Some(prefs))),
            Err(IqFailure::Unusable(error)) => Err(error),
            Err(failure) => Ok((
                refused("a change of its archive preferences", &failure),
                None,
            )),
        }
    }

    /// XEP-0136: automatic archiving off for this stream (ARC-07: a server
    /// that answers `not-allowed` cannot turn it off).
    async fn confirm_auto_archiving_off(&mut self) -> Result<ServerArchive, ClientError> {
        let id = self.layer.next_iq_id("archive");
        let pref = tokio_xmpp::minidom::Element::builder("pref", archive::ARCHIVE_NS)
            .append(archive::auto_archiving_off())
            .build();
        let set = Iq::Set {
            from: None,
            to: None,
            id,
            payload: pref,
        };
        match self.round_trip(set, None).await {
            Ok(_) => Ok(ServerArchive::Xep0136),
            Err(IqFailure::Unusable(error)) => Err(error),
            Err(failure) => Ok(refused("turning off automatic archiving", &failure)),
        }
    }
}

/// A server whose features could not be discovered: nothing is promised.
fn undiscovered(jid: &Jid) -> ServerArchive {
    ServerArchive::Refused(format!(
        "{jid} did not answer service discovery, so its archive is unknown"
    ))
}

fn refused(request: &str, failure: &IqFailure) -> ServerArchive {
    ServerArchive::Refused(match failure {
        IqFailure::Refused(condition) => {
            let name = tokio_xmpp::minidom::Element::from(condition.clone())
                .name()
                .to_owned();
            format!("the server archives messages and answered {name} to {request}")
        }
        _ => format!("the server archives messages and did not answer {request}"),
    })
}
