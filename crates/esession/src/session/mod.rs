//! XEP-0200 stanza encryption on an established ESession (ENC-01..20).
//!
//! Only [`EstablishedSession`] holds stanza keys, so only an established
//! session can encrypt (style practice 3). Sending: the stanza's children other
//! than `<thread/>`, `<amp/>` and `<error/>` are serialized, compressed, CTR-
//! encrypted and MACed into one `<c/>` (ENC-02..10); presence and iq live in
//! [`kinds`] (an iq or presence error may carry a second `<c/>` inside its
//! `<error/>`, ENC-03). Receiving: the MAC is verified in constant time before
//! anything is decrypted (ENC-12); any failure ends the session and nothing is
//! delivered. Rekeying and the publication of expired MAC keys live in
//! [`rekey`] (ENC-08, ENC-11, ENC-14..20).
//!
//! Every stanza, whatever its kind and however many `<c/>` it carries, goes
//! through one sending path (`seal_parts`, then `emit`) and one receiving
//! path (`unseal_content` for each `<c/>`, then `accept_key` and
//! `commit_receive` once), so key sets, block counts, `<new/>`, `<key/>` and
//! `<old/>` are handled alike for all of them.
//!
//! ENC-03 with ENC-08/11/16 [IMPL] (proposed AMB-63): a stanza with two `<c/>`
//! (a type='error' presence or iq) is one unit under one key set. The sender
//! puts the same `<new/>` in both, `<key/>` and `<old/>` only in the top-level
//! `<c/>`, and its `<key/>` takes effect after the whole stanza (ENC-16: the
//! `<key/>` stanza is protected by the old keys). The receiver verifies both
//! `<c/>` before anything is committed, and refuses (ending the session) a
//! stanza whose `<c/>` chose different key sets or whose inner `<c/>` carries
//! `<key/>`: either could be read only by guessing.

pub(crate) mod control;
pub(crate) mod kinds;
pub(crate) mod rekey;

use std::num::NonZeroU32;

use esession_crypto::{
    CipherAlgorithm, CompressionAlgorithm, Compressor, Counter, Decompressor, HashAlgorithm,
    SecretBytes,
};
use esession_wire::encrypted::{EncryptedContent, ReceivedEncryptedContent};
use esession_wire::minidom::{Element, Node};
use esession_wire::{ns, xml};

use crate::Error;
use crate::event::{SessionId, SessionInfo};
use crate::identity::IdentityProof;
use crate::profile::{
    ClearTerminate, FormParsing, Keystream, Padding, Profile, StanzaMacCounter, Termination,
};
use crate::random::{RandomPurpose, Randomness};
use crate::stanza::{message, set_attr, text_child};
pub(crate) use rekey::RekeySetup;
use rekey::{AcceptedKey, KeyRing, PreparedRekey, StanzaKeys};

/// One direction's keys and counter.
pub(crate) struct Direction {
    keys: StanzaKeys,
    counter: Counter,
}

impl Direction {
    /// Keys one direction from its KC, KM and the counter after identity encryption (ESN-43).
    pub(crate) fn new(
        cipher: CipherAlgorithm,
        hash: HashAlgorithm,
        cipher_key: &SecretBytes,
        mac_key: &SecretBytes,
        counter: Counter,
    ) -> Result<Self, Error> {
        Ok(Self {
            keys: StanzaKeys::new(cipher, hash, cipher_key, mac_key)?,
            counter,
        })
    }
}

/// What a stanza we send is for; decides whether it carries our `<key/>`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Purpose {
    /// Application content: with `<key/>` when a rekey is due (ENC-19: block
    /// count, idle time) and allowed (ENC-14).
    Content,
    /// A rekey-only stanza (ENC-10); the caller checked it is allowed.
    Rekey,
    /// Content bundled with a 3-message completion (ESN-29, AMB-44): never
    /// with `<key/>` and never after a rekey-only stanza (there is only one
    /// stanza); it must fit under the fresh keys' block limit.
    Bundled,
    /// The terminate form: never with `<key/>`.
    Terminate,
    /// The terminate acknowledgement: never with `<key/>`.
    TerminateAck,
}

/// Where the session is in its life.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Active,
    /// We sent the encrypted terminate form and await the acknowledgement (ESN-45/46).
    TerminateSent,
}

/// Why an incoming stanza could not be opened.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum OpenFailure {
    /// Not authenticated under the current keys (MAC mismatch or an unusable
    /// `<c/>`): nothing about the session changed.
    Unauthenticated,
    /// Authenticated but unusable (a `<key/>` outside 1 < e < p-1, `<c/>`
    /// of one stanza under different key sets, bad plaintext): the session is
    /// out of step and must end (ENC-13, ENC-18).
    Invalid,
}

/// What an incoming encrypted stanza turned out to be.
#[derive(Debug)]
pub(crate) enum Opened {
    /// An ordinary message, decrypted and spliced back together, and the
    /// clear `<error/>` of a type='error' message (unauthenticated).
    Message(Element, Option<Box<Element>>),
    /// The peer's authenticated terminate request (ESN-46).
    TerminateRequest,
    /// The peer's authenticated acknowledgement of our terminate (ESN-46).
    TerminateAck,
    /// A rekey-only stanza (ENC-10): keys changed, nothing to deliver.
    Nothing,
}

/// An established ESession: the only type holding stanza keys.
pub struct EstablishedSession {
    /// The peer's wire profile (issue 6).
    profile: Profile,
    id: SessionId,
    info: SessionInfo,
    /// Our outgoing keys and every incoming key set (ENC-11, ENC-17).
    keys: KeyRing,
    send_counter: Counter,
    receive_counter: Counter,
    /// Continuous keystream only: bytes of the last generated block used (16: none spare).
    send_used: u8,
    receive_used: u8,
    compressor: Compressor,
    decompressor: Decompressor,
    phase: Phase,
    pad_to_multiple: Option<usize>,
    max_plaintext_len: usize,
    /// Elements in one decrypted stanza at most (issue 11).
    max_elements: usize,
    /// AMB-57: the retained secret to confirm once the peer proves the final keys.
    pub(crate) unconfirmed_secret: Option<(String, String)>,
    /// The retained secret the peer claimed (responder side), and its chain's
    /// verified flag: proven only by the peer's first stanza under the final keys.
    pub(crate) pending_retained_claim: Option<bool>,
    /// A stanza from the peer verified under the final keys.
    peer_proven: bool,
    /// XEP-0187 sender: the recipient's options expire then (Unix seconds);
    /// what we wrote after it would be discarded unread (AMB-71), so it is not sent.
    send_until: Option<u64>,
    /// Our full JID, the `from` of every stanza we send (when the
    /// application set it). Issue 16: the stanza head is built per stanza
    /// from this and the session id instead of cloning a kept
    /// `<message/>` template, which held about 1.9 KB per session.
    own_jid: Option<String>,
}

impl core::fmt::Debug for EstablishedSession {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EstablishedSession")
            .field("id", &self.id)
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

/// Parameters for [`EstablishedSession::new`].
pub(crate) struct SessionSetup {
    /// The peer's wire profile.
    pub(crate) profile: Profile,
    pub(crate) id: SessionId,
    pub(crate) info: SessionInfo,
    pub(crate) own_jid: Option<String>,
    pub(crate) send: Direction,
    pub(crate) receive: Direction,
    /// What rekeying needs: group, exponents, `rekey_freq` (ENC-14..19).
    pub(crate) rekey: RekeySetup,
    pub(crate) pad_to_multiple: Option<usize>,
    pub(crate) max_plaintext_len: usize,
    pub(crate) max_elements: usize,
    pub(crate) unconfirmed_secret: Option<(String, String)>,
    pub(crate) pending_retained_claim: Option<bool>,
}

impl EstablishedSession {
    /// Only the negotiation's `establish` calls this; the
    /// [`IdentityProof`] shows the peer's identity verified.
    pub(crate) fn new(setup: SessionSetup, _verified: IdentityProof) -> Self {
        // With 3 messages there is no message 4: Alice's identity proved the
        // session keys to the responder.
        let peer_proven = setup.info.we_initiated || setup.info.three_message;
        let mut rekey = setup.rekey;
        // An offline session is short and one-way (OFF-16): no rekeying.
        rekey.rekeying = setup.profile.allows_rekeying() && !setup.info.offline;
        Self {
            profile: setup.profile,
            send_used: 16,
            receive_used: 16,
            own_jid: setup.own_jid,
            compressor: Compressor::new(setup.info.compression),
            decompressor: Decompressor::new(setup.info.compression),
            keys: KeyRing::new(
                setup.info.hash,
                setup.info.cipher,
                setup.send.keys,
                setup.receive.keys,
                rekey,
            ),
            send_counter: setup.send.counter,
            receive_counter: setup.receive.counter,
            id: setup.id,
            info: setup.info,
            phase: Phase::Active,
            pad_to_multiple: setup.pad_to_multiple,
            max_plaintext_len: setup.max_plaintext_len,
            max_elements: setup.max_elements,
            unconfirmed_secret: setup.unconfirmed_secret,
            pending_retained_claim: setup.pending_retained_claim,
            // The initiator verified the responder's message 4 under the final
            // keys (AMB-57); only the responder waits for the peer's first stanza.
            peer_proven,
            send_until: None,
        }
    }

    /// XEP-0187 sender (AMB-71): nothing is sent after `until` (Unix seconds), when the
    /// recipient's options expire.
    pub(crate) fn send_until(&mut self, until: u64) {
        self.send_until = Some(until);
    }

    /// Which session.
    pub fn id(&self) -> &SessionId {
        &self.id
    }

    /// What was agreed.
    pub fn info(&self) -> &SessionInfo {
        &self.info
    }

    /// The wire profile this session runs under.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// Whether the peer has proven the final keys: with message 4 (initiator)
    /// or with a stanza that verified (responder).
    pub(crate) fn peer_proven(&self) -> bool {
        self.peer_proven
    }

    /// The responder learns that the initiator really held the retained secret:
    /// its first stanza verified under keys derived from it (AMB-57).
    pub(crate) fn prove_retained_claim(&mut self) -> Option<bool> {
        let verified = self.pending_retained_claim.take()?;
        self.info.retained_secret_unproven = false;
        self.info.authenticated_by_retained_secret = true;
        self.info.retained_chain_verified = verified;
        self.info.sas_reminder = self.info.sas_reminder && !verified;
        Some(verified)
    }

    /// The user dismissed the SAS reminder for this peer (ESN-34).
    pub(crate) fn suppress_sas_reminder(&mut self) {
        self.info.sas_reminder = false;
    }

    /// The user confirmed the SAS (ESN-34): this session and the chain it
    /// continues are verified (ESN-42).
    pub(crate) fn mark_sas_confirmed(&mut self) {
        self.info.sas_confirmed = true;
        self.info.retained_chain_verified = true;
        self.info.sas_reminder = false;
    }

    /// The initiator claimed a retained secret and has not proven it within
    /// the wait: the session is announced as not (yet) authenticated by it.
    pub(crate) fn mark_retained_secret_unproven(&mut self) {
        if self.pending_retained_claim.is_some() {
            self.info.retained_secret_unproven = true;
        }
    }

    /// Whether the responder still waits for the initiator to prove the
    /// retained secret it claimed (AMB-57).
    pub(crate) fn awaits_retained_secret_proof(&self) -> bool {
        self.pending_retained_claim.is_some()
    }

    pub(crate) fn awaiting_terminate_ack(&self) -> bool {
        self.phase == Phase::TerminateSent
    }

    /// Encrypts an application `<message/>` (ENC-01..10). Its `to`, `from` and
    /// `<thread/>` are set by the session; `type` is kept. Adds the online AMP
    /// rule of AMB-23 unless the message carries its own `<amp/>`.
    ///
    /// Returns the stanzas to send, in order: the message, carrying our
    /// `<key/>` when a rekey is due (ENC-16, ENC-19), preceded by a rekey-only
    /// stanza when the message would not fit under the current keys' block
    /// limit. [`Error::KeysExhausted`] when it would not fit and `rekey_freq`
    /// bars a rekey: the caller must end the session (AMB-28).
    pub(crate) fn seal_message(
        &mut self,
        plain: &Element,
        rng: &mut dyn Randomness,
        now: u64,
    ) -> Result<Vec<Element>, Error> {
        self.seal_message_as(plain, Purpose::Content, rng, now)
    }

    /// `plain` sealed as content bundled with a 3-message completion (ESN-29,
    /// AMB-44): one stanza, never with `<key/>`, counted under the fresh keys
    /// like any other; [`Error::InvalidInput`] if it would not fit under the
    /// block limit.
    pub(crate) fn seal_bundled(
        &mut self,
        plain: &Element,
        rng: &mut dyn Randomness,
        now: u64,
    ) -> Result<Element, Error> {
        self.seal_message_as(plain, Purpose::Bundled, rng, now)?
            .pop()
            .ok_or(Error::InvalidInput("nothing to seal"))
    }

    fn seal_message_as(
        &mut self,
        plain: &Element,
        purpose: Purpose,
        rng: &mut dyn Randomness,
        now: u64,
    ) -> Result<Vec<Element>, Error> {
        if self.phase != Phase::Active {
            return Err(Error::SessionEnded);
        }
        if !plain.is("message", ns::JABBER_CLIENT) {
            return Err(Error::InvalidInput("not a jabber:client <message/>"));
        }
        let mut content = String::new();
        let mut amp = None;
        let mut clear = Vec::new();
        for child in plain.children() {
            let client = child.ns() == ns::JABBER_CLIENT;
            match child.name() {
                "thread" if client => {}
                // ENC-02: the error element and its condition stay in clear.
                "error" if client => clear.push(child.clone()),
                "amp" if child.ns() == ns::AMP => amp = Some(child.clone()),
                "c" if child.ns() == ns::STANZA_ENCRYPTION => {
                    return Err(Error::InvalidInput("message already contains <c/>"));
                }
                _ => content.push_str(
                    &xml::serialize(child, ns::JABBER_CLIENT)
                        .map_err(|_| Error::InvalidInput("unserializable child"))?,
                ),
            }
        }
        if self.info.offline {
            // OFF-12: when we wrote it, inside the ciphertext, for the
            // recipient to show rather than the server's delay stamp.
            content.push_str(&crate::offline::created_header(now));
        }
        // AMB-23: offline storage is resource-less, so an offline session
        // carries no match-resource rule (it would bounce every stanza).
        let amp = amp.or_else(|| (!self.info.offline).then(online_amp_rule));
        let kind = plain.attr("type");
        let mut stanzas = self.seal(content, kind, amp, purpose, rng, now)?;
        if let Some(stanza) = stanzas.last_mut() {
            for child in clear {
                stanza.append_child(child);
            }
        }
        Ok(stanzas)
    }

    /// Our `<key/>` now, in a stanza without content (ENC-10, ENC-16);
    /// [`Error::RekeyTooSoon`] before `rekey_freq` stanzas since the last key
    /// exchange or with too many of our `<key/>`s unanswered (ENC-14).
    pub(crate) fn seal_rekey(
        &mut self,
        rng: &mut dyn Randomness,
        now: u64,
    ) -> Result<Element, Error> {
        if self.phase != Phase::Active {
            return Err(Error::SessionEnded);
        }
        if self.info.offline && self.info.we_initiated {
            return Err(Error::OfflineSessionReadOnly); // OFF-16
        }
        self.keys.expire(now);
        if !self.keys.may_rekey() {
            return Err(Error::RekeyTooSoon);
        }
        self.seal_one(String::new(), None, Purpose::Rekey, rng, now)
    }

    /// Timer duties: destroys key sets past their 60 s (ENC-17), and returns
    /// a rekey-only stanza when a rekey is due (ENC-19: block count or idle
    /// time) and allowed (ENC-14).
    pub(crate) fn on_timer(&mut self, rng: &mut dyn Randomness, now: u64) -> Option<Element> {
        self.keys.expire(now);
        if self.phase != Phase::Active || !self.keys.auto_rekey_due(now) {
            return None;
        }
        self.seal_one(String::new(), None, Purpose::Rekey, rng, now)
            .ok()
    }

    /// When [`Self::on_timer`] next has work (Unix seconds).
    pub(crate) fn next_deadline(&self, now: u64) -> Option<u64> {
        if self.phase != Phase::Active {
            return None;
        }
        self.keys.next_deadline(now)
    }

    /// The encrypted terminate form (ESN-45); afterwards nothing else may be sent
    /// except what the acknowledgement needs (ESN-47). It carries the MAC keys
    /// already safe to publish (ENC-20).
    pub(crate) fn seal_terminate(
        &mut self,
        rng: &mut dyn Randomness,
        now: u64,
    ) -> Result<Element, Error> {
        if self.phase != Phase::Active {
            return Err(Error::SessionEnded);
        }
        let stanza = self.seal_one(terminate_form("submit"), None, Purpose::Terminate, rng, now)?;
        self.phase = Phase::TerminateSent;
        Ok(stanza)
    }

    /// Everything that ends this session from our side, in order: the
    /// encrypted terminate form and, with [`Termination::EncryptedThenClearNoAck`],
    /// the clear-text feature-neg form after it (reference-behaviour.md §11:
    /// the peer acts on that one only; sent last so that the encrypted one is
    /// still decrypted in the session). Check [`Self::expects_terminate_ack`].
    pub(crate) fn terminate_stanzas(
        &mut self,
        rng: &mut dyn Randomness,
        now: u64,
    ) -> Result<Vec<Element>, Error> {
        let encrypted = self.seal_terminate(rng, now)?;
        let mut stanzas = vec![encrypted];
        if self.profile.termination == Termination::EncryptedThenClearNoAck {
            stanzas.push(self.clear_terminate_form());
        }
        Ok(stanzas)
    }

    /// Whether our terminate form is answered by an acknowledgement (ESN-46);
    /// if not, the session ends as soon as the form is sent.
    pub(crate) fn expects_terminate_ack(&self) -> bool {
        // AMB-45, AMB-74: nobody acknowledges in an offline session.
        !self.info.offline && self.profile.termination == Termination::EncryptedAwaitAck
    }

    /// The clear-text SSN terminate form as Gajim sends and expects it
    /// (reference-behaviour.md §2 "Termination", §11): a message without
    /// `type`, with the session's `<thread/>`, no `<body/>` and no `<c/>`.
    fn clear_terminate_form(&self) -> Element {
        use esession_wire::form::{DataForm, Field, FormKind};
        let form = DataForm::new(FormKind::Submit)
            .with_field(Field::untyped("FORM_TYPE", vec![ns::SSN.to_owned()]))
            .with_field(Field::untyped("terminate", vec!["1".to_owned()]));
        let mut feature = Element::bare("feature", ns::FEATURE_NEG);
        feature.append_child(Element::from(&form));
        let mut stanza = self.stanza_head(None);
        stanza.append_child(feature);
        stanza
    }

    /// `<message to from type><thread/></message>`: the start of every
    /// stanza we send in this session.
    fn stanza_head(&self, kind: Option<&str>) -> Element {
        let mut stanza = message(self.id.peer.as_str(), self.own_jid.as_deref(), kind);
        stanza.append_child(text_child("thread", ns::JABBER_CLIENT, &self.id.thread));
        stanza
    }

    /// Whether a clear-text terminate form ends this session (AMB-54).
    pub(crate) fn honours_clear_terminate(&self) -> bool {
        self.profile.clear_terminate == ClearTerminate::Honour
    }

    /// The encrypted acknowledgement of the peer's terminate (ESN-46); the
    /// session then sends nothing more (ESN-47) and must be dropped. Like the
    /// terminate form, it carries the MAC keys already safe to publish (ENC-20).
    pub(crate) fn seal_terminate_ack(
        &mut self,
        rng: &mut dyn Randomness,
        now: u64,
    ) -> Result<Element, Error> {
        if self.phase != Phase::Active {
            return Err(Error::SessionEnded);
        }
        let stanza = self.seal_one(
            terminate_form("result"),
            None,
            Purpose::TerminateAck,
            rng,
            now,
        )?;
        self.phase = Phase::TerminateSent;
        Ok(stanza)
    }

    /// A stanza that never needs a rekey-only stanza before it.
    fn seal_one(
        &mut self,
        content: String,
        kind: Option<&str>,
        purpose: Purpose,
        rng: &mut dyn Randomness,
        now: u64,
    ) -> Result<Element, Error> {
        let amp = (purpose == Purpose::Rekey).then(online_amp_rule);
        self.seal(content, kind, amp, purpose, rng, now)?
            .pop()
            .ok_or(Error::InvalidInput("nothing to seal"))
    }

    /// One message stanza from the template around one `<c/>` (ENC-01..10),
    /// preceded by a rekey-only stanza when the block limit demands it.
    fn seal(
        &mut self,
        content: String,
        kind: Option<&str>,
        amp: Option<Element>,
        purpose: Purpose,
        rng: &mut dyn Randomness,
        now: u64,
    ) -> Result<Vec<Element>, Error> {
        let sealed = self.seal_parts(vec![content], purpose, rng, now)?;
        let mut stanzas = sealed.before;
        let mut amp = amp;
        for c in sealed.parts {
            let stanza = self.wrap(c, kind, amp.take());
            stanzas.push(stanza);
        }
        Ok(stanzas)
    }

    /// Seals the contents of ONE stanza, one `<c/>` each, counters in the
    /// given order (ENC-03: document order), under one key set (see the
    /// module docs). This is the only sending path: every stanza kind and
    /// purpose goes through the block accounting, `<new/>`, `<old/>` and the
    /// automatic rekey here (ENC-08, ENC-14..20, AMB-28).
    ///
    /// Everything that can fail happens before any key or counter changes
    /// (practice 12); then [`Self::emit`] cannot fail.
    fn seal_parts(
        &mut self,
        mut parts: Vec<String>,
        purpose: Purpose,
        rng: &mut dyn Randomness,
        now: u64,
    ) -> Result<SealedParts, Error> {
        if self.info.offline && self.info.we_initiated {
            // OFF-16: the recipient of an offline session never sends in it.
            return Err(Error::OfflineSessionReadOnly);
        }
        if self.send_until.is_some_and(|until| now > until) {
            return Err(Error::OfflineOptions(crate::offline::OptionsError::Expired));
        }
        self.keys.expire(now);
        if self.profile.keystream == Keystream::ContinuousFromCPlusOne
            && parts.iter().any(String::is_empty)
        {
            // Every Gajim stanza carries <data/>: a <c/> without it would not
            // decrypt there (reference-behaviour.md §10).
            return Err(Error::InvalidInput(
                "empty content cannot be sent under this profile",
            ));
        }
        match self.profile.padding {
            Padding::AsConfigured => {
                if let Some(multiple) = self.pad_to_multiple.filter(|m| *m > 1) {
                    for part in &mut parts {
                        pad_with_whitespace(part, multiple, rng);
                    }
                }
            }
            Padding::SpacesToMultipleOf16 => {
                for part in &mut parts {
                    pad_with_spaces(part, 16);
                }
            }
        }
        // ENC-19, AMB-28: a stanza that would reach the block limit goes under
        // fresh keys (a rekey-only stanza first), or not at all.
        let bound = parts
            .iter()
            .map(|p| self.block_bound(p.len()))
            .fold(0u64, u64::saturating_add);
        let fits = self.keys.fits(bound);
        let rekey_first = purpose == Purpose::Content && !fits;
        if rekey_first {
            if !self.keys.may_rekey() {
                return Err(Error::KeysExhausted);
            }
            if !self.keys.fits_fresh(bound) {
                return Err(Error::InvalidInput(
                    "stanza too large for the rekey block limit",
                ));
            }
        }
        if purpose == Purpose::Bundled && !fits {
            return Err(Error::InvalidInput(
                "stanza too large for the rekey block limit",
            ));
        }
        let piggy_back = match purpose {
            Purpose::Rekey => true,
            Purpose::Content => !rekey_first && self.keys.auto_rekey_due(now),
            Purpose::Bundled | Purpose::Terminate | Purpose::TerminateAck => false,
        };
        let first = if rekey_first {
            Some(self.keys.prepare_rekey(rng)?)
        } else {
            None
        };
        let rekey = if piggy_back {
            Some(self.keys.prepare_rekey(rng)?)
        } else {
            None
        };
        let mut data = Vec::with_capacity(parts.len());
        for part in parts {
            data.push(if part.is_empty() {
                None
            } else {
                Some(
                    self.compressor
                        .compress_owned(part.into_bytes())
                        .map_err(|_| Error::InvalidInput("compression failed"))?,
                )
            });
        }
        let mut before = Vec::new();
        if let Some(prepared) = first {
            for c in self.emit(vec![None], Some(prepared), now) {
                before.push(self.wrap(c, None, Some(online_amp_rule())));
            }
        }
        let parts = self.emit(data, rekey, now);
        Ok(SealedParts { before, parts })
    }

    /// Upper bound of the blocks content of `len` bytes takes (AMB-09; ENC-10:
    /// empty content and the `none` cipher take one).
    fn block_bound(&self, len: usize) -> u64 {
        if len == 0 || !self.info.cipher.is_confidential() {
            return 1;
        }
        let bound = match self.info.compression {
            CompressionAlgorithm::None => len,
            // zlib may grow incompressible input a little (stored blocks, flush).
            _ => len.saturating_add(len / 16).saturating_add(64),
        };
        u64::try_from(bound.div_ceil(16)).unwrap_or(u64::MAX)
    }

    /// Encrypts, MACs and commits the `<c/>` of one stanza, in order
    /// (ENC-06..10, ENC-16, ENC-20). All of them carry the same `<new/>`; only
    /// the first (the top-level one) carries `<key/>` and `<old/>`; the keys
    /// change after the last (module docs, proposed AMB-63).
    fn emit(
        &mut self,
        data: Vec<Option<Vec<u8>>>,
        rekey: Option<PreparedRekey>,
        now: u64,
    ) -> Vec<Element> {
        let start = self.send_counter;
        let mut counter = start;
        let mut used = self.send_used;
        let new = NonZeroU32::new(self.keys.new_count());
        let mut key = rekey.as_ref().map(|r| r.public.clone());
        let mut old = self.keys.take_old();
        let mut sealed = Vec::with_capacity(data.len());
        for bytes in data {
            let before = counter;
            let data = match bytes {
                // ENC-10: no <data/>, the counter still advances by one.
                None => {
                    counter.advance(1);
                    None
                }
                Some(mut bytes) => {
                    self.profile.apply_ctr(
                        &self.keys.send.cipher,
                        &mut counter,
                        &mut used,
                        &mut bytes,
                    );
                    Some(bytes)
                }
            };
            // ENC-16: the <key/> stanza is still protected by the old keys.
            let encrypted = EncryptedContent {
                data,
                key: key.take(),
                new,
                old: core::mem::take(&mut old),
                mac: Vec::new(),
            };
            let mac_key = &self.keys.send.mac;
            sealed.push(
                encrypted.seal_with(|m_content| mac_key.compute(&[m_content, &before.to_bytes()])),
            );
        }
        self.send_counter = counter;
        self.send_used = used;
        self.keys
            .commit_sent(blocks_between(start, counter), rekey, now);
        sealed
    }

    /// A message stanza of this session around `c`.
    fn wrap(&self, c: Element, kind: Option<&str>, amp: Option<Element>) -> Element {
        let mut stanza = self.stanza_head(kind);
        stanza.append_child(c);
        // Gajim deletes the first <body/> of every encrypted message before it
        // decrypts, and puts its own explanatory one after <c/> (§10).
        if let Some(body) = self.profile.fallback_body {
            stanza.append_child(text_child("body", ns::JABBER_CLIENT, body));
        }
        if let Some(amp) = amp {
            stanza.append_child(amp);
        }
        stanza
    }

    /// Verifies, decrypts and parses an incoming message of this session
    /// (ENC-03, ENC-11..13, ENC-18). Nothing of a failed stanza may be
    /// delivered, and it changes nothing; [`OpenFailure`] tells whether the
    /// session is still in step.
    pub(crate) fn open(&mut self, stanza: &Element, now: u64) -> Result<Opened, OpenFailure> {
        use OpenFailure::Unauthenticated;
        let mut encrypted = stanza
            .children()
            .filter(|c| c.is("c", ns::STANZA_ENCRYPTION));
        let c = encrypted.next().ok_or(Unauthenticated)?;
        if encrypted.next().is_some() {
            return Err(Unauthenticated); // ENC-03: exactly one <c/>.
        }
        let start = self.receive_counter;
        let mut counter = start;
        let mut used = self.receive_used;
        let Unsealed { set, data, key } = self.unseal_content(c, &mut counter, &mut used, now)?;
        let key_only = data.is_none() && key.is_some();
        let children = self.inflate(data)?;
        let accepted = self.accept_key(set, key.as_deref(), now)?;
        // Everything checked: commit the counter and keys exactly once (practice 12).
        self.commit_receive(set, start, (counter, used), accepted, now);

        if let Some(kind) = terminate_kind(&children, self.profile.form_parsing) {
            return Ok(match kind {
                "submit" => Opened::TerminateRequest,
                _ => Opened::TerminateAck,
            });
        }
        if key_only && children.is_empty() {
            return Ok(Opened::Nothing);
        }
        let mut children = children;
        let mut out = Element::bare("message", ns::JABBER_CLIENT);
        *out.attrs_mut() = stanza.attrs().clone();
        let mut clear_error = None;
        let is_error = stanza.attr("type") == Some("error");
        for child in stanza.children() {
            if child.is("c", ns::STANZA_ENCRYPTION) {
                for decrypted in children.drain(..) {
                    out.append_child(decrypted);
                }
            } else if child.is("error", ns::JABBER_CLIENT) {
                // ENC-02: an <error/> travels in clear, so it is not
                // authenticated: handed over apart (issue 11), and only
                // where it belongs, in a type='error' message.
                if is_error && clear_error.is_none() {
                    clear_error = Some(Box::new(child.clone()));
                }
            } else if is_clear_part(child) {
                out.append_child(child.clone());
            }
            // Anything else arrived in clear beside the <c/>: unauthenticated,
            // so not delivered (a server's <delay/> stays in the raw stanza).
        }
        Ok(Opened::Message(out, clear_error))
    }

    /// ENC-09/11/12: verifies one `<c/>` under the key set its `<new/>` chose
    /// (a destroyed or expired set, ENC-17, fails) at `counter`, in constant
    /// time and before anything is decrypted, then decrypts its `<data/>`.
    /// Only the local `counter` advances; the session is unchanged, so a
    /// stanza with several `<c/>` can be verified whole before anything is
    /// committed (ENC-03).
    fn unseal_content(
        &self,
        c: &Element,
        counter: &mut Counter,
        used: &mut u8,
        now: u64,
    ) -> Result<Unsealed, OpenFailure> {
        use OpenFailure::Unauthenticated;
        let received = ReceivedEncryptedContent::try_from(c).map_err(|_| Unauthenticated)?;
        let new = received.content().new.map_or(0, NonZeroU32::get);
        let (set, keys) = self.keys.chosen(new, now).ok_or(Unauthenticated)?;
        let before = *counter;
        let tag = &received.content().mac;
        // ENC-12: MAC first (it covers <key/>, <new/> and <old/>); replays and
        // reordering fail here.
        let authentic = keys
            .mac
            .verify(&[received.m_content(), &before.to_bytes()], tag)
            // Gajim's sender MACs the minimal C (§15 bug 2, §17): differs only
            // when C's top octet is zero.
            || (self.profile.stanza_mac_counter == StanzaMacCounter::SendFixed16AcceptMinimal
                && before.to_bytes()[0] == 0
                && keys
                    .mac
                    .verify(&[received.m_content(), &before.to_minimal_bytes()], tag));
        // FUZZING ONLY: `cfg(fuzzing)` is a rustc flag set by cargo-fuzz, never by a
        // Cargo feature, so no normal build can carry this bypass. It lets fuzzers reach
        // decryption, decompression and parsing with mutated stanzas (practice 17).
        if !(authentic || cfg!(fuzzing)) {
            return Err(Unauthenticated);
        }
        // Received <old/> are ignored (ENC-20).
        let (content, _) = received.into_parts();
        let data = match content.data {
            // The continuous keystream has no rule for a <c/> without <data/>.
            None if self.profile.keystream == Keystream::ContinuousFromCPlusOne => {
                return Err(Unauthenticated);
            }
            None => {
                counter.advance(1);
                None
            }
            Some(mut bytes) => {
                self.profile
                    .apply_ctr(&keys.cipher, counter, used, &mut bytes);
                Some(bytes)
            }
        };
        Ok(Unsealed {
            set,
            data,
            key: content.key,
        })
    }

    /// ENC-13: decompresses (advancing the per-direction context) and parses
    /// decrypted content; refuses anything that is never encrypted (ENC-02).
    fn inflate(&mut self, data: Option<Vec<u8>>) -> Result<Vec<Element>, OpenFailure> {
        use OpenFailure::Invalid;
        let plaintext = match data {
            None => Vec::new(),
            Some(bytes) => self
                .decompressor
                .decompress_owned(bytes, self.max_plaintext_len)
                .map_err(|_| Invalid)?,
        };
        let text = String::from_utf8(plaintext).map_err(|_| Invalid)?;
        let nodes = xml::parse_fragment_bounded(&text, ns::JABBER_CLIENT, self.max_elements)
            .map_err(|_| Invalid)?;
        let mut children = Vec::new();
        for node in nodes {
            match node {
                Node::Element(el) => {
                    let reserved = (el.ns() == ns::JABBER_CLIENT
                        && matches!(el.name(), "thread" | "error"))
                        || el.is("amp", ns::AMP)
                        || el.is("c", ns::STANZA_ENCRYPTION);
                    if reserved {
                        return Err(Invalid); // ENC-02: these are never encrypted.
                    }
                    children.push(el);
                }
                Node::Text(t) if t.chars().all(|c| matches!(c, ' ' | '\t' | '\r' | '\n')) => {}
                Node::Text(_) => return Err(Invalid),
            }
        }
        Ok(children)
    }

    /// ENC-18, AMB-27: the `<key/>` of a stanza that verified under `set`:
    /// 1 < e < p-1 and the new keys, computed but not committed.
    fn accept_key(
        &self,
        set: u64,
        key: Option<&[u8]>,
        now: u64,
    ) -> Result<Option<AcceptedKey>, OpenFailure> {
        key.map(|key| {
            self.keys
                .accept_key(set, key, now)
                .map_err(|_| OpenFailure::Invalid)
        })
        .transpose()
    }

    /// A whole stanza verified, decrypted and checked under `set`: commit the
    /// incoming counter, the key set choice (ENC-11) and its `<key/>` exactly
    /// once (practice 12); the peer has proven the keys.
    fn commit_receive(
        &mut self,
        set: u64,
        start: Counter,
        (counter, used): (Counter, u8),
        accepted: Option<AcceptedKey>,
        now: u64,
    ) {
        self.receive_counter = counter;
        self.receive_used = used;
        self.keys
            .commit_received(set, blocks_between(start, counter), accepted, now);
        self.peer_proven = true;
    }

    #[cfg(test)]
    pub(crate) fn key_ring(&self) -> &KeyRing {
        &self.keys
    }
}

/// The `<c/>` of one stanza ([`EstablishedSession::seal_parts`]).
struct SealedParts {
    /// A complete rekey-only stanza that must be sent first (ENC-19), if any.
    before: Vec<Element>,
    /// One `<c/>` per part, in order.
    parts: Vec<Element>,
}

/// One `<c/>` verified and decrypted, nothing committed.
struct Unsealed {
    /// The key set its `<new/>` chose (ENC-11).
    set: u64,
    data: Option<Vec<u8>>,
    /// MPI(e) of the peer's `<key/>`, not yet checked (ENC-18).
    key: Option<Vec<u8>>,
}

/// Blocks a stanza used: how far its counter moved (AMB-09).
fn blocks_between(before: Counter, after: Counter) -> u64 {
    u64::try_from(after.value().wrapping_sub(before.value())).unwrap_or(u64::MAX)
}

/// AMB-23: deliver only to the resource that negotiated; error otherwise.
fn online_amp_rule() -> Element {
    let mut amp = Element::bare("amp", ns::AMP);
    let mut rule = Element::bare("rule", ns::AMP);
    set_attr(&mut rule, "action", "error");
    set_attr(&mut rule, "condition", "match-resource");
    set_attr(&mut rule, "value", "other");
    amp.append_child(rule);
    amp
}

/// The SSN terminate form (SSN-15): `submit` to ask, `result` to acknowledge.
fn terminate_form(kind: &str) -> String {
    format!(
        "<feature xmlns=\"{}\"><x xmlns=\"{}\" type=\"{kind}\"><field var=\"FORM_TYPE\"><value>{}</value></field><field var=\"terminate\"><value>1</value></field></x></feature>",
        ns::FEATURE_NEG,
        ns::DATA_FORMS,
        ns::SSN
    )
}

/// If the decrypted children are exactly an SSN terminate form, its form type.
fn terminate_kind(children: &[Element], parsing: FormParsing) -> Option<&'static str> {
    let [feature] = children else { return None };
    if !feature.is("feature", ns::FEATURE_NEG) {
        return None;
    }
    let x = feature.get_child("x", ns::DATA_FORMS)?;
    let form = match parsing {
        FormParsing::Strict => esession_wire::form::DataForm::try_from(x).ok()?,
        FormParsing::AcceptGajimTextSingle => {
            esession_wire::form::DataForm::try_from_relaxed(x).ok()?
        }
    };
    if form.form_type_value() != Some(ns::SSN) {
        return None;
    }
    let terminate = form.field("terminate")?.as_bool().ok()?;
    if !terminate {
        return None;
    }
    match form.kind {
        esession_wire::form::FormKind::Submit => Some("submit"),
        esession_wire::form::FormKind::Result => Some("result"),
        _ => None,
    }
}

/// ASCII spaces up to the next multiple of `multiple` bytes, none if already
/// a multiple (reference-behaviour.md §10 item 3, §17: bytes).
fn pad_with_spaces(content: &mut String, multiple: usize) {
    let missing = (multiple - content.len() % multiple) % multiple;
    content.extend(core::iter::repeat_n(' ', missing));
}

/// ENC-04: random trailing whitespace up to the next multiple of `multiple` bytes.
fn pad_with_whitespace(content: &mut String, multiple: usize, rng: &mut dyn Randomness) {
    let missing = (multiple - content.len() % multiple) % multiple;
    let mut noise = vec![0u8; missing];
    rng.fill(RandomPurpose::Padding, &mut noise);
    content.extend(
        noise
            .iter()
            .map(|b| [' ', '\t', '\n', '\r'][usize::from(b & 3)]),
    );
}

/// ENC-02: the parts of a message that are never encrypted and are delivered
/// as they arrived: `<thread/>` and `<amp/>` (and `<error/>`, handed over
/// apart as unauthenticated).
fn is_clear_part(child: &Element) -> bool {
    child.is("thread", ns::JABBER_CLIENT) || child.is("amp", ns::AMP)
}

/// Whether `stanza` carries a `<c/>` (an encrypted stanza).
pub(crate) fn is_encrypted(stanza: &Element) -> bool {
    stanza.children().any(|c| c.is("c", ns::STANZA_ENCRYPTION))
}

/// Whether `stanza` carries a clear-text SSN terminate form (AMB-54), read
/// as `parsing` reads forms.
pub(crate) fn is_clear_terminate(stanza: &Element, parsing: FormParsing) -> bool {
    let children: Vec<Element> = stanza
        .children()
        .filter(|c| c.is("feature", ns::FEATURE_NEG))
        .cloned()
        .collect();
    terminate_kind(&children, parsing) == Some("submit")
}

#[cfg(test)]
mod tests;
