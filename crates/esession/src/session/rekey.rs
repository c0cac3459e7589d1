//! XEP-0200 key management: rekeying (ENC-08, ENC-11, ENC-14..19) and the
//! publication of expired MAC keys (ENC-20).
//!
//! A [`KeyRing`] holds our single outgoing key pair (ENC-17: "one outgoing pair
//! only") and one *key set* per `<key/>` of ours the peer may not have seen yet:
//! XEP-0200's `{KC_B, KM_B, x}` = the keys we accept from the peer plus our
//! private exponent. Sets are numbered from 0 (the negotiation) and never
//! renumbered; a destroyed set leaves a gap, so that `<new>N</new>` always
//! means "the set N after the one the peer last used" (AMB-56).
//!
//! ```text
//!  we send <key/>:   K = d^x (d = the peer's latest public value)
//!                    out  := Initiator(K)   (the <key/> stanza itself is still under the old out)
//!                    push set {in = Acceptor(K), x}
//!  we get <key>e</key> in a stanza that chose set i by <new/>:
//!                    destroy sets < i; check 1 < e < p-1 (AMB-27); K = e^(x of set i)
//!                    in of every set := Initiator(K); out := Acceptor(K) iff only set i is left
//! ```
//!
//! Labels follow who sent the `<key/>`, not who started the session
//! ([`RekeyRole`], ENC-15). Every change is computed first and committed only
//! after the stanza verified (practice 12): a failing stanza changes nothing.

use std::collections::VecDeque;

use esession_crypto::kdf::{RekeyKeys, RekeyRole};
use esession_crypto::{
    CipherAlgorithm, CtrCipher, DhExponent, DhKeyPair, DhPublicValue, ExponentSize, HashAlgorithm,
    MacKey, ModpGroup, SecretBytes,
};
use esession_wire::encrypted::MAX_OLD;

use crate::Error;
use crate::random::Randomness;

/// ENC-17: old incoming keys and exponents live this many seconds after the
/// `<key/>` that replaced them was sent, unless a stanza proves the peer moved on.
pub(crate) const KEY_SET_LIFETIME: u64 = 60;
/// ENC-19: fewer than 2^32 encrypted blocks per key exchange.
pub(crate) const MAX_BLOCKS_PER_EXCHANGE: u64 = 1 << 32;
/// The smallest block limit `Config::rekey_block_limit` may set.
pub(crate) const MIN_BLOCK_LIMIT: u64 = 256;
/// Most of our `<key/>`s that may be unanswered at once (bounds the key sets).
pub(crate) const MAX_KEY_SETS: usize = 8;
/// Most expired MAC keys remembered for publication; older ones are simply
/// destroyed unpublished (publishing is a MAY, ENC-20).
const MAX_PENDING_OLD: usize = 64;
/// Blocks kept free under every key for a key-only stanza and the encrypted
/// terminate form, so that both always fit below the limit (ENC-19, AMB-28).
const RESERVED_BLOCKS: u64 = 64;

/// One direction's keys: cipher key, MAC key and the MAC key's bytes (kept
/// only so that the key can be published once expired, ENC-20).
pub(crate) struct StanzaKeys {
    pub(crate) cipher: CtrCipher,
    pub(crate) mac: MacKey,
    mac_secret: SecretBytes,
}

impl StanzaKeys {
    pub(crate) fn new(
        cipher: CipherAlgorithm,
        hash: HashAlgorithm,
        cipher_key: &SecretBytes,
        mac_key: &SecretBytes,
    ) -> Result<Self, Error> {
        Ok(Self {
            cipher: CtrCipher::new(cipher, cipher_key.expose())
                .map_err(|_| Error::InvalidInput("cipher key"))?,
            mac: MacKey::new(hash, mac_key.expose()),
            mac_secret: mac_key.duplicate(),
        })
    }

    fn from_rekey(
        cipher: CipherAlgorithm,
        hash: HashAlgorithm,
        keys: &RekeyKeys,
    ) -> Result<Self, Error> {
        Self::new(cipher, hash, &keys.cipher, &keys.mac)
    }
}

/// `{KC, KM, x}`: the peer's keys we accept under this set, and our exponent.
struct KeySet {
    receive: StanzaKeys,
    /// Its public value was sent; only x is kept (issue 16: memory).
    exponent: DhExponent,
    /// When our next `<key/>` was sent (ENC-17 starts the 60 s then).
    superseded_at: Option<u64>,
}

/// What the negotiation hands to the record layer for rekeying.
pub(crate) struct RekeySetup {
    pub(crate) group: ModpGroup,
    pub(crate) exponent_size: ExponentSize,
    /// The agreed `rekey_freq` (ENC-14).
    pub(crate) rekey_freq: u32,
    /// Our negotiation exponent (x or y): the first key set's.
    pub(crate) own: DhKeyPair,
    /// The peer's negotiation value (d or e).
    pub(crate) peer: DhPublicValue,
    pub(crate) idle_rekey_after: Option<u64>,
    pub(crate) block_limit: u64,
    pub(crate) now: u64,
    /// XEP-0200 rekeying allowed by the profile (sent or accepted).
    pub(crate) rekeying: bool,
    /// The peer's `<key/>`s accepted per minute at most (issue 11).
    pub(crate) peer_rekeys_per_minute: u32,
}

/// Why a peer's `<key/>` is refused (each ends the session: ENC-13).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum KeyRefused {
    /// The profile has no rekeying (Gajim): a `<key/>` is out of step.
    RekeyingNotAgreed,
    /// Before `rekey_freq` stanzas since the peer's last `<key/>` (ENC-14).
    TooSoon,
    /// Beyond `Limits::peer_rekeys_per_minute` (issue 11).
    TooOften,
    /// Not 1 < e < p-1 (AMB-27).
    OutOfRange,
    /// The stanza chose a key set we no longer hold.
    UnknownKeySet,
    /// The new keys could not be derived.
    Derivation,
}

/// A rekey of ours, computed but not yet committed (ENC-15).
pub(crate) struct PreparedRekey {
    /// MPI(e) for `<key/>`.
    pub(crate) public: Vec<u8>,
    send: StanzaKeys,
    set: KeySet,
}

/// A peer's `<key/>`, checked and computed but not yet committed (ENC-18).
pub(crate) struct AcceptedKey {
    index: u64,
    peer: DhPublicValue,
    /// New incoming keys, one per live set from `index` on, in order.
    receive: Vec<StanzaKeys>,
    /// New outgoing keys, iff only the selected set remains.
    send: Option<StanzaKeys>,
}

/// The XEP-0200 key state of one session (see the module docs).
pub(crate) struct KeyRing {
    hash: HashAlgorithm,
    cipher: CipherAlgorithm,
    group: ModpGroup,
    exponent_size: ExponentSize,
    rekey_freq: u64,
    idle_rekey_after: Option<u64>,
    block_limit: u64,
    /// Rekeying allowed by the profile (issue 6: Gajim never rekeys).
    rekeying: bool,
    pub(crate) send: StanzaKeys,
    /// Our key sets, oldest first; `None` = destroyed (AMB-56).
    /// Boxed: growing the deque on a rekey moves pointers, not key state
    /// (a moved `MacKey` would leave an unwiped copy in freed memory).
    sets: VecDeque<Option<Box<KeySet>>>,
    /// Number of `sets[0]`.
    first: u64,
    /// The set the peer's last stanza chose.
    anchor: u64,
    /// The peer's latest public value: its negotiation value or last `<key/>`.
    peer_public: DhPublicValue,
    /// `<key/>` stanzas received since we last sent (ENC-08).
    keys_since_sent: u32,
    /// Stanzas both ways since the last key exchange, the exchange counting
    /// as one (ENC-14, AMB-55).
    stanzas_since_exchange: u64,
    /// Blocks encrypted both ways since the last key exchange (ENC-19, AMB-28).
    blocks_since_exchange: u64,
    /// Stanzas both ways since the peer's last `<key/>` (or the
    /// negotiation): ENC-14 holds the peer to `rekey_freq` too (issue 11).
    since_peer_key: u64,
    /// When the peer's recent `<key/>`s were accepted (Unix seconds, at most
    /// `peer_rekeys_per_minute` of them within a minute).
    peer_key_times: VecDeque<u64>,
    peer_rekeys_per_minute: u32,
    /// Last stanza sent or received (for the idle rekey).
    last_activity: u64,
    /// Our own retired MAC keys, each publishable once the peer chose a set
    /// numbered at least this (then it holds newer keys for us, ENC-20).
    retired_own: Vec<(u64, SecretBytes)>,
    /// MAC keys no stanza can use any more, not yet published (ENC-20).
    publishable: VecDeque<SecretBytes>,
}

impl KeyRing {
    pub(crate) fn new(
        hash: HashAlgorithm,
        cipher: CipherAlgorithm,
        send: StanzaKeys,
        receive: StanzaKeys,
        setup: RekeySetup,
    ) -> Self {
        // One set until the first rekey (issue 16: a second slot reserved for
        // every session cost 1.3 KB each, used only while a rekey overlaps).
        let mut sets = VecDeque::with_capacity(1);
        sets.push_back(Some(Box::new(KeySet {
            receive,
            exponent: setup.own.into_exponent(),
            superseded_at: None,
        })));
        Self {
            hash,
            cipher,
            group: setup.group,
            exponent_size: setup.exponent_size,
            rekey_freq: u64::from(setup.rekey_freq.max(1)),
            idle_rekey_after: setup.idle_rekey_after,
            block_limit: setup
                .block_limit
                .clamp(MIN_BLOCK_LIMIT, MAX_BLOCKS_PER_EXCHANGE),
            rekeying: setup.rekeying,
            send,
            sets,
            first: 0,
            anchor: 0,
            peer_public: setup.peer,
            keys_since_sent: 0,
            stanzas_since_exchange: 1,
            blocks_since_exchange: 0,
            since_peer_key: 1,
            peer_key_times: VecDeque::new(),
            peer_rekeys_per_minute: setup.peer_rekeys_per_minute,
            last_activity: setup.now,
            retired_own: Vec::new(),
            publishable: VecDeque::new(),
        }
    }

    // ----- queries -------------------------------------------------------

    fn newest(&self) -> u64 {
        self.first + self.sets.len() as u64 - 1
    }

    fn slot(&self, index: u64) -> Option<&KeySet> {
        let offset = index.checked_sub(self.first)?;
        self.sets.get(usize::try_from(offset).ok()?)?.as_deref()
    }

    fn expired(set: &KeySet, now: u64) -> bool {
        set.superseded_at
            .is_some_and(|t| now >= t.saturating_add(KEY_SET_LIFETIME))
    }

    /// The set a stanza with `<new>new</new>` chose, if it still exists and
    /// has not outlived ENC-17's 60 s (ENC-11).
    pub(crate) fn chosen(&self, new: u32, now: u64) -> Option<(u64, &StanzaKeys)> {
        let index = self.anchor.checked_add(u64::from(new))?;
        let set = self.slot(index)?;
        (!Self::expired(set, now)).then_some((index, &set.receive))
    }

    /// ENC-14, AMB-55: `rekey_freq` stanzas since the last exchange, and not
    /// too many of our `<key/>`s unanswered.
    pub(crate) fn may_rekey(&self) -> bool {
        self.rekeying
            && self.stanzas_since_exchange >= self.rekey_freq
            && self.live_sets() < MAX_KEY_SETS
    }

    fn live_sets(&self) -> usize {
        self.sets.iter().filter(|s| s.is_some()).count()
    }

    /// Half the block limit is used up (ENC-19: rekey well before it).
    fn blocks_due(&self) -> bool {
        self.blocks_since_exchange >= self.block_limit / 2
    }

    /// Idle for the configured time with stanzas exchanged under the current keys.
    fn idle_due(&self, now: u64) -> bool {
        self.idle_rekey_after.is_some_and(|idle| {
            self.stanzas_since_exchange >= 2 && now >= self.last_activity.saturating_add(idle)
        })
    }

    /// Whether a rekey of ours is due now and allowed (ENC-14, ENC-19).
    pub(crate) fn auto_rekey_due(&self, now: u64) -> bool {
        self.may_rekey() && (self.blocks_due() || self.idle_due(now))
    }

    /// Whether `blocks` more under the current keys keep the exchange below
    /// its limit with room left for a key-only stanza and a terminate form.
    pub(crate) fn fits(&self, blocks: u64) -> bool {
        self.blocks_since_exchange
            .saturating_add(blocks)
            .saturating_add(RESERVED_BLOCKS)
            < self.block_limit
    }

    /// Whether a stanza of `blocks` could ever fit under one key exchange.
    pub(crate) fn fits_fresh(&self, blocks: u64) -> bool {
        blocks.saturating_add(RESERVED_BLOCKS) < self.block_limit
    }

    /// `<new/>` for the next stanza we send (ENC-08).
    pub(crate) fn new_count(&self) -> u32 {
        self.keys_since_sent
    }

    /// When [`Self::on_timer`] next has something to do.
    pub(crate) fn next_deadline(&self, now: u64) -> Option<u64> {
        let expiries = self
            .sets
            .iter()
            .flatten()
            .filter_map(|s| s.superseded_at.map(|t| t.saturating_add(KEY_SET_LIFETIME)));
        let rekey = if self.may_rekey() && self.blocks_due() {
            Some(now)
        } else if self.may_rekey() && self.stanzas_since_exchange >= 2 {
            self.idle_rekey_after
                .map(|idle| self.last_activity.saturating_add(idle))
        } else {
            None
        };
        expiries.chain(rekey).min()
    }

    // ----- our rekey (ENC-15, ENC-16) ------------------------------------

    /// Draws a fresh exponent and computes the new keys; commits nothing.
    pub(crate) fn prepare_rekey(&self, rng: &mut dyn Randomness) -> Result<PreparedRekey, Error> {
        let exponent = rng.dh_key_pair(self.group, self.exponent_size);
        let k = exponent
            .agree_keeping(&self.peer_public)
            .map_err(|_| Error::InvalidInput("rekey group"))?;
        let derive = |role| {
            RekeyKeys::derive(self.hash, self.cipher, &k, role)
                .map_err(|_| Error::InvalidInput("rekey key derivation"))
        };
        let ours = derive(RekeyRole::Initiator)?;
        let theirs = derive(RekeyRole::Acceptor)?;
        drop(k); // ENC-15: K destroyed once the keys exist (SecretBytes zeroizes).
        Ok(PreparedRekey {
            public: exponent.public().to_mpi().to_vec(),
            send: StanzaKeys::from_rekey(self.cipher, self.hash, &ours)?,
            set: KeySet {
                receive: StanzaKeys::from_rekey(self.cipher, self.hash, &theirs)?,
                exponent: exponent.into_exponent(),
                superseded_at: None,
            },
        })
    }

    /// Takes up to [`MAX_OLD`] MAC keys that are safe to publish (ENC-20),
    /// each once.
    pub(crate) fn take_old(&mut self) -> Vec<Vec<u8>> {
        let count = self.publishable.len().min(MAX_OLD);
        self.publishable
            .drain(..count)
            .map(|key| key.expose().to_vec())
            .collect()
    }

    /// After a stanza of `blocks` went out, with our `<key/>` if `rekey`.
    pub(crate) fn commit_sent(&mut self, blocks: u64, rekey: Option<PreparedRekey>, now: u64) {
        self.keys_since_sent = 0;
        self.last_activity = now;
        match rekey {
            Some(prepared) => {
                // ENC-16: the old KC goes now; the old KM waits for publication.
                let old = core::mem::replace(&mut self.send, prepared.send);
                self.retire_own(old.mac_secret);
                if let Some(Some(newest)) = self.sets.back_mut() {
                    newest.superseded_at = Some(now);
                }
                self.sets.push_back(Some(Box::new(prepared.set)));
                self.stanzas_since_exchange = 1;
                self.blocks_since_exchange = 0;
                self.since_peer_key = self.since_peer_key.saturating_add(1);
            }
            None => self.count(blocks),
        }
    }

    fn count(&mut self, blocks: u64) {
        self.stanzas_since_exchange = self.stanzas_since_exchange.saturating_add(1);
        self.since_peer_key = self.since_peer_key.saturating_add(1);
        self.blocks_since_exchange = self.blocks_since_exchange.saturating_add(blocks);
    }

    // ----- the peer's stanzas (ENC-11, ENC-18) ---------------------------

    /// Checks the peer's `<key/>` (1 < e < p-1, AMB-27) and computes what it
    /// changes for a stanza that chose set `index`; commits nothing.
    pub(crate) fn accept_key(
        &self,
        index: u64,
        key: &[u8],
        now: u64,
    ) -> Result<AcceptedKey, KeyRefused> {
        if !self.rekeying {
            return Err(KeyRefused::RekeyingNotAgreed);
        }
        // ENC-14 binds the peer too: not before `rekey_freq` stanzas since its
        // last <key/> (counted both ways, which never undercounts its view),
        // and (issue 11) not more often than the configured rate: each costs
        // us a modular exponentiation.
        if self.since_peer_key < self.rekey_freq {
            return Err(KeyRefused::TooSoon);
        }
        let recent = self
            .peer_key_times
            .iter()
            .filter(|t| now.saturating_sub(**t) < 60)
            .count();
        if recent >= self.peer_rekeys_per_minute as usize {
            return Err(KeyRefused::TooOften);
        }
        let peer =
            DhPublicValue::from_bytes(self.group, key).map_err(|_| KeyRefused::OutOfRange)?;
        let set = self.slot(index).ok_or(KeyRefused::UnknownKeySet)?;
        // ENC-18: y from the oldest set we keep, which is the chosen one.
        let k = set
            .exponent
            .agree_keeping(&peer)
            .map_err(|_| KeyRefused::OutOfRange)?;
        let derive = |role| {
            RekeyKeys::derive(self.hash, self.cipher, &k, role).map_err(|_| KeyRefused::Derivation)
        };
        let theirs = derive(RekeyRole::Initiator)?;
        let remaining: Vec<&KeySet> = (index..=self.newest())
            .filter_map(|i| self.slot(i))
            .filter(|s| !Self::expired(s, now))
            .collect();
        let receive = remaining
            .iter()
            .map(|_| StanzaKeys::from_rekey(self.cipher, self.hash, &theirs))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| KeyRefused::Derivation)?;
        let send = if remaining.len() == 1 {
            let ours = derive(RekeyRole::Acceptor)?;
            Some(
                StanzaKeys::from_rekey(self.cipher, self.hash, &ours)
                    .map_err(|_| KeyRefused::Derivation)?,
            )
        } else {
            None
        };
        drop(k);
        Ok(AcceptedKey {
            index,
            peer,
            receive,
            send,
        })
    }

    /// After a stanza from the peer verified under set `index` and everything
    /// in it checked out: destroy older sets (ENC-11), apply its `<key/>`.
    pub(crate) fn commit_received(
        &mut self,
        index: u64,
        blocks: u64,
        key: Option<AcceptedKey>,
        now: u64,
    ) {
        self.expire(now);
        for i in self.first..index {
            self.wipe(i);
        }
        self.anchor = index;
        self.last_activity = now;
        match key {
            Some(accepted) if accepted.index == index => {
                let mut fresh = accepted.receive.into_iter();
                let mut retired = Vec::new();
                for set in self.sets.iter_mut().flatten() {
                    if let Some(keys) = fresh.next() {
                        let old = core::mem::replace(&mut set.receive, keys);
                        retired.push(old.mac_secret);
                    }
                }
                for old in retired {
                    self.retire_incoming(old);
                }
                if let Some(send) = accepted.send {
                    let old = core::mem::replace(&mut self.send, send);
                    self.retire_own(old.mac_secret);
                }
                self.peer_public = accepted.peer;
                self.keys_since_sent = self.keys_since_sent.saturating_add(1);
                self.stanzas_since_exchange = 1;
                self.blocks_since_exchange = 0;
                self.since_peer_key = 1;
                while self
                    .peer_key_times
                    .front()
                    .is_some_and(|t| now.saturating_sub(*t) >= 60)
                {
                    self.peer_key_times.pop_front();
                }
                self.peer_key_times.push_back(now);
            }
            _ => self.count(blocks),
        }
        self.promote_own();
        self.trim();
    }

    /// ENC-17: destroys sets whose 60 s are over.
    pub(crate) fn expire(&mut self, now: u64) {
        let stale: Vec<u64> = (self.first..=self.newest())
            .filter(|&i| self.slot(i).is_some_and(|s| Self::expired(s, now)))
            .collect();
        for i in stale {
            self.wipe(i);
        }
        self.trim();
    }

    fn wipe(&mut self, index: u64) {
        let Some(offset) = index
            .checked_sub(self.first)
            .and_then(|o| usize::try_from(o).ok())
        else {
            return;
        };
        if let Some(Some(set)) = self.sets.get_mut(offset).map(Option::take) {
            // The exponent and cipher key are zeroized on drop here.
            let KeySet { receive, .. } = *set;
            self.retire_incoming(receive.mac_secret);
        }
    }

    /// Drops leading destroyed sets (indices stay valid through `first`).
    fn trim(&mut self) {
        while self.sets.len() > 1 && matches!(self.sets.front(), Some(None)) {
            self.sets.pop_front();
            self.first += 1;
        }
    }

    /// An incoming MAC key we no longer accept: publishable at once, unless
    /// another set still accepts the same key (ENC-20).
    fn retire_incoming(&mut self, key: SecretBytes) {
        let in_use = self
            .sets
            .iter()
            .flatten()
            .any(|s| s.receive.mac_secret.ct_eq(key.expose()));
        let queued = self.publishable.iter().any(|k| k.ct_eq(key.expose()));
        if !in_use && !queued {
            self.push_publishable(key);
        }
    }

    /// Our outgoing MAC key, replaced: the peer may accept it until it chose a
    /// set newer than every set we have now (then it has processed a `<key/>`
    /// of ours sent after this key was retired).
    fn retire_own(&mut self, key: SecretBytes) {
        if self.retired_own.len() >= MAX_PENDING_OLD {
            self.retired_own.remove(0);
        }
        let threshold = self.newest() + 1;
        self.retired_own.push((threshold, key));
    }

    fn promote_own(&mut self) {
        let anchor = self.anchor;
        let (ready, waiting): (Vec<_>, Vec<_>) = core::mem::take(&mut self.retired_own)
            .into_iter()
            .partition(|(threshold, _)| *threshold <= anchor);
        self.retired_own = waiting;
        for (_, key) in ready {
            self.push_publishable(key);
        }
    }

    fn push_publishable(&mut self, key: SecretBytes) {
        if self.publishable.len() >= MAX_PENDING_OLD {
            self.publishable.pop_front();
        }
        self.publishable.push_back(key);
    }

    #[cfg(test)]
    pub(crate) fn live_set_numbers(&self) -> Vec<u64> {
        (self.first..=self.newest())
            .filter(|&i| self.slot(i).is_some())
            .collect()
    }

    #[cfg(test)]
    pub(crate) fn receive_mac_of(&self, index: u64) -> Option<Vec<u8>> {
        self.slot(index)
            .map(|s| s.receive.mac_secret.expose().to_vec())
    }

    #[cfg(test)]
    pub(crate) fn send_mac(&self) -> Vec<u8> {
        self.send.mac_secret.expose().to_vec()
    }

    #[cfg(test)]
    pub(crate) fn peer_public_mpi(&self) -> Vec<u8> {
        self.peer_public.to_mpi().to_vec()
    }
}
