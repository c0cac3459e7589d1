//! Issue 11: what peers can make us hold and compute. Negotiations in
//! progress and established sessions are capped per bare JID and in all
//! ([`crate::Limits`]); negotiations that an unauthenticated stanza makes us
//! start are rate-limited per bare JID. Every limit reached is an event.

use std::collections::{HashMap, VecDeque};

use jid::BareJid;

use super::{Key, SessionManager, State};
use crate::error::{Error, LimitKind};
use crate::event::{Event, Output, SessionId};

/// Starts that unauthenticated stanzas caused, per bare JID (Unix seconds,
/// oldest first), for [`crate::Limits::unsolicited_starts_per_minute`].
#[derive(Default)]
pub(crate) struct StartLog {
    by_peer: HashMap<String, VecDeque<u64>>,
}

/// Bare JIDs whose start log is kept; the map is pruned beyond this.
const START_LOG_PEERS: usize = 4096;

impl StartLog {
    /// Whether another start for `peer` is allowed now; records it if so.
    pub(crate) fn allow(&mut self, peer: &str, per_minute: u32, now: u64) -> bool {
        if self.by_peer.len() >= START_LOG_PEERS && !self.by_peer.contains_key(peer) {
            self.by_peer
                .retain(|_, times| times.back().is_some_and(|t| now.saturating_sub(*t) < 60));
            if self.by_peer.len() >= START_LOG_PEERS {
                return false;
            }
        }
        let times = self.by_peer.entry(peer.to_owned()).or_default();
        while times.front().is_some_and(|t| now.saturating_sub(*t) >= 60) {
            times.pop_front();
        }
        if times.len() >= per_minute as usize {
            return false;
        }
        times.push_back(now);
        true
    }
}

/// What a manager holds, for the fuzz properties of issue 11
/// (`crate::fuzzing::hostile_peers`).
#[derive(Debug, Default)]
pub(crate) struct Census {
    /// Negotiations in progress, per bare JID.
    pub(crate) negotiating: HashMap<String, usize>,
    /// Established sessions, per bare JID.
    pub(crate) established: HashMap<String, usize>,
    /// Established sessions compressed with zlib.
    pub(crate) compressed: usize,
    /// Entries of the negotiation timeout map.
    pub(crate) timed: usize,
}

impl SessionManager {
    /// Counts what the manager holds.
    pub(crate) fn census(&self) -> Census {
        let mut census = Census {
            timed: self.started.len(),
            ..Census::default()
        };
        for ((peer, _), state) in &self.sessions {
            let count = match state {
                State::Established(session) => {
                    if session.info().compression != esession_crypto::CompressionAlgorithm::None {
                        census.compressed += 1;
                    }
                    &mut census.established
                }
                _ => &mut census.negotiating,
            };
            *count.entry(peer.to_string()).or_default() += 1;
        }
        census
    }

    /// Before a new negotiation with `peer` (bare JID) is kept: drops the
    /// oldest negotiations in progress (of this peer, then of anyone) so the
    /// new one fits under the caps, each with a `NegotiationFailed` event.
    pub(super) fn make_room_for_negotiation(&mut self, peer: &BareJid, out: &mut Output) {
        let limits = self.config.limits;
        let per_peer = limits.pending_negotiations_per_peer.max(1);
        let total = limits.pending_negotiations_total.max(1);
        loop {
            let mine: Vec<&Key> = self.started.keys().filter(|(p, _)| p == peer).collect();
            if mine.len() < per_peer {
                break;
            }
            let Some(oldest) = mine
                .into_iter()
                .min_by_key(|k| self.started.get(*k).copied().unwrap_or(0))
                .cloned()
            else {
                break;
            };
            self.drop_negotiation(oldest, LimitKind::PendingNegotiationsPerPeer, out);
        }
        while self.started.len() >= total {
            let Some(oldest) = self
                .started
                .iter()
                .min_by_key(|(_, since)| **since)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            self.drop_negotiation(oldest, LimitKind::PendingNegotiationsTotal, out);
        }
    }

    fn drop_negotiation(&mut self, k: Key, limit: LimitKind, out: &mut Output) {
        self.started.remove(&k);
        if let Some(state) = self.sessions.remove(&k) {
            if let State::Established(session) = state {
                self.sessions.insert(k, State::Established(session));
                return;
            }
            out.event(Event::NegotiationFailed {
                session: SessionId {
                    peer: state.peer().to_owned(),
                    thread: k.1,
                },
                error: Error::LimitReached(limit),
            });
        }
    }

    /// Whether an automatic answer in `group` to `peer` (bare JID) is within
    /// the budget for expensive groups ([`crate::Limits::expensive_group_bits`]);
    /// records it if so.
    pub(super) fn may_answer_in(&mut self, group: esession_crypto::ModpGroup, peer: &str) -> bool {
        let limits = self.config.limits;
        if group.bits() <= limits.expensive_group_bits {
            return true;
        }
        let now = self.clock.now_unix();
        // The peer's own budget first: one that is over it does not use up
        // everyone's.
        self.expensive_log
            .allow(peer, limits.expensive_answers_per_peer, now)
            && self
                .expensive_log
                .allow("*", limits.expensive_answers_total, now)
    }

    /// Whether one more zlib session fits under
    /// [`crate::Limits::compressed_sessions_total`]. Negotiations that may
    /// still end in zlib count (our offers that allow it, agreed ones in
    /// progress), so the cap holds however the steps interleave.
    pub(super) fn compressed_cap_reached(&self) -> bool {
        use esession_crypto::CompressionAlgorithm::None as Identity;
        let compressed = self
            .sessions
            .values()
            .filter(|state| match state {
                State::Established(session) => session.info().compression != Identity,
                State::Offered(alice) => alice.allows_zlib(),
                State::Completed(alice) => alice.compression() != Identity,
                State::Answered(bob) => bob.compression() != Identity,
                State::PendingOffer(offer) => offer.compression() != Identity,
                State::PendingPlain(_) => false,
            })
            .count();
        compressed >= self.config.limits.compressed_sessions_total
    }

    /// Whether one more established session with `peer` (bare JID) fits
    /// under the caps; `Some(limit)` names the cap it would exceed. Our own
    /// negotiations in progress count as sessions (each may complete without
    /// a further check), so the caps hold however the steps interleave.
    pub(super) fn session_cap_reached(&self, peer: &BareJid) -> Option<LimitKind> {
        let limits = self.config.limits;
        // One pass (at most `sessions_total` entries plus negotiations).
        let (mut all, mut of_peer) = (0usize, 0usize);
        for ((p, _), state) in &self.sessions {
            if matches!(
                state,
                State::Established(_) | State::Offered(_) | State::Completed(_)
            ) {
                all += 1;
                if p == peer {
                    of_peer += 1;
                }
            }
        }
        if all >= limits.sessions_total {
            return Some(LimitKind::SessionsTotal);
        }
        (of_peer >= limits.sessions_per_peer).then_some(LimitKind::SessionsPerPeer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_are_limited_per_peer_per_minute() {
        let mut log = StartLog::default();
        assert!(log.allow("bob@x", 2, 1000));
        assert!(log.allow("bob@x", 2, 1010));
        assert!(!log.allow("bob@x", 2, 1020), "a third within the minute");
        assert!(log.allow("carol@x", 2, 1020), "per peer");
        assert!(log.allow("bob@x", 2, 1061), "the first one aged out");
        assert!(!log.allow("bob@x", 0, 5000), "0 allows none");
    }

    #[test]
    fn the_start_log_is_bounded_in_peers() {
        let mut log = StartLog::default();
        for i in 0..START_LOG_PEERS {
            assert!(log.allow(&format!("p{i}@x"), 1, 100));
        }
        // All recent: a new peer is refused rather than growing the map.
        assert!(!log.allow("new@x", 1, 101));
        // A minute later the old entries are pruned.
        assert!(log.allow("new@x", 1, 200));
        assert!(log.by_peer.len() <= START_LOG_PEERS);
    }
}
