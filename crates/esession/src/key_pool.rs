//! Issue 16: DH key pairs computed ahead of time, so that starting or
//! answering a negotiation does not wait for modular exponentiations.
//!
//! An initiator computes e for every group it offers (ESN-06; eight groups
//! by default, about 12 ms on our reference machine before the first stanza
//! leaves), a responder computes its d for the chosen group. A
//! [`KeyPairPool`] holds a bounded number of fresh pairs per group;
//! [`PooledRandomness`] hands them to the core through the injected
//! [`Randomness`] interface, so the core stays sans-IO and unaware of it.
//!
//! What keeps this as safe as computing each pair on demand:
//! - every pair leaves the pool by being moved out ([`KeyPairPool::take`]),
//!   so none is ever handed out twice (ESN-48), and a pool that has none
//!   ready computes one on the spot (the cold path, unchanged);
//! - pairs are generated exactly as on demand: same CSPRNG, same exponent
//!   size, same constant-time exponentiation;
//! - the pool is bounded per group (at most [`MAX_PAIRS_PER_GROUP`]), so its
//!   memory is known and nothing a peer does makes it grow;
//! - a pair waiting in the pool keeps its exponent in zeroize-on-drop
//!   memory; [`KeyPairPool::clear`] and dropping the pool wipe them.
//!
//! Who refills it is the caller's choice: `refill_one` in idle time, or the
//! adapter's background thread (`esession_xmpp::key_pool`), which sleeps in
//! [`KeyPairPool::wait_for_demand`] while the pool is full.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use esession_crypto::rand_core::CryptoRng;
use esession_crypto::{DhKeyPair, ExponentSize, ModpGroup};

use crate::random::{RandomPurpose, Randomness};

/// The most pairs a pool keeps for one group and exponent size. A group-18
/// pair holds about 2 KiB; 64 of each of the eight groups stay under 1 MiB.
pub const MAX_PAIRS_PER_GROUP: usize = 64;

/// How many pairs a pool keeps ready, and how it has been used.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Pairs ready now, per group (in the order the pool was given them).
    pub ready: Vec<(ModpGroup, usize)>,
    /// Pairs handed out from the pool.
    pub taken: u64,
    /// Requests the pool could not serve (computed on the spot instead).
    pub missed: u64,
}

type Slot = (ModpGroup, ExponentSize);

/// One group and exponent size: how many pairs to keep, and those ready.
struct Kept {
    slot: Slot,
    target: usize,
    ready: Vec<DhKeyPair>,
}

impl Kept {
    fn short(&self) -> bool {
        self.ready.len() < self.target
    }
}

struct State {
    /// In refill priority order; at most one per slot (a handful in all).
    kept: Vec<Kept>,
    taken: u64,
    missed: u64,
    /// Set by [`KeyPairPool::close`]: refilling stops, waiting threads wake.
    closed: bool,
    /// Live [`PooledRandomness`] values using the pool, and whether there
    /// ever was one: once the last is dropped the pool is abandoned.
    users: usize,
    had_users: bool,
}

impl State {
    fn abandoned(&self) -> bool {
        self.had_users && self.users == 0
    }
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when a pair is taken (there is room to refill) or on close.
    demand: Condvar,
}

/// A bounded, thread-safe pool of single-use DH key pairs; see the module
/// documentation. Clones share the same pool.
#[derive(Clone)]
pub struct KeyPairPool {
    shared: Arc<Shared>,
}

impl core::fmt::Debug for KeyPairPool {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Counts only: a pool never shows its pairs.
        f.debug_struct("KeyPairPool")
            .field("stats", &self.stats())
            .finish()
    }
}

impl KeyPairPool {
    /// A pool keeping `per_group` pairs (at most [`MAX_PAIRS_PER_GROUP`]) of
    /// each group in `groups`, with `size` exponents; refilled in the order
    /// given, so list the groups whose pairs are needed first first.
    pub fn new(groups: &[ModpGroup], size: ExponentSize, per_group: usize) -> Self {
        let per_group = per_group.min(MAX_PAIRS_PER_GROUP);
        let mut kept: Vec<Kept> = Vec::new();
        for &group in groups {
            if !kept.iter().any(|k| k.slot.0 == group) {
                kept.push(Kept {
                    slot: (group, size),
                    target: per_group,
                    ready: Vec::new(),
                });
            }
        }
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    kept,
                    taken: 0,
                    missed: 0,
                    closed: false,
                    users: 0,
                    had_users: false,
                }),
                demand: Condvar::new(),
            }),
        }
    }

    /// A pool for a manager with `config`: `per_group` pairs of each group
    /// it offers and accepts, with its exponent size.
    pub fn for_config(config: &crate::Config, per_group: usize) -> Self {
        Self::new(&config.groups, config.exponent_size, per_group)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a pair half-moved (every
        // change is one push or pop), so a poisoned pool is still consistent.
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A fresh pair for `group` and `size`, removed from the pool: never
    /// handed out again. `None` when none is ready (compute one instead).
    pub fn take(&self, group: ModpGroup, size: ExponentSize) -> Option<DhKeyPair> {
        let mut state = self.state();
        let pair = state
            .kept
            .iter_mut()
            .find(|k| k.slot == (group, size))
            .and_then(|k| k.ready.pop());
        match pair {
            Some(_) => state.taken += 1,
            None => state.missed += 1,
        }
        drop(state);
        self.shared.demand.notify_all();
        pair
    }

    /// The slot most in need of a pair (the first, in the order given, below
    /// its target), or `None` when the pool is full or closed.
    pub fn wanted(&self) -> Option<(ModpGroup, ExponentSize)> {
        let state = self.state();
        if state.closed || state.abandoned() {
            return None;
        }
        state.kept.iter().find(|k| k.short()).map(|k| k.slot)
    }

    /// Adds `pair` if its group has room; otherwise drops (and so wipes) it.
    /// Returns whether it was kept.
    pub fn put(&self, pair: DhKeyPair, size: ExponentSize) -> bool {
        let mut state = self.state();
        if state.closed {
            return false;
        }
        let slot = (pair.group(), size);
        match state.kept.iter_mut().find(|k| k.slot == slot) {
            Some(kept) if kept.short() => {
                kept.ready.push(pair);
                true
            }
            _ => false,
        }
    }

    /// Computes one pair for the slot most in need, outside the lock (other
    /// threads keep taking meanwhile). Returns whether the pool wanted one.
    pub fn refill_one<R: CryptoRng + ?Sized>(&self, rng: &mut R) -> bool {
        let Some((group, size)) = self.wanted() else {
            return false;
        };
        self.put(DhKeyPair::generate(group, size, rng), size);
        true
    }

    /// Fills the pool completely (e.g. at start-up); returns how many pairs
    /// it computed.
    pub fn fill<R: CryptoRng + ?Sized>(&self, rng: &mut R) -> usize {
        let mut computed = 0;
        while self.refill_one(rng) {
            computed += 1;
        }
        computed
    }

    /// Blocks the calling thread until the pool wants a pair, it is closed,
    /// or `timeout` passes. For a refilling thread; never called by the core.
    /// Returns whether a pair is wanted.
    pub fn wait_for_demand(&self, timeout: Duration) -> bool {
        let state = self.state();
        let wanted = |state: &mut State| {
            !state.closed && !state.abandoned() && state.kept.iter().any(Kept::short)
        };
        let (mut state, _) = self
            .shared
            .demand
            .wait_timeout_while(state, timeout, |state| {
                !wanted(state) && !state.closed && !state.abandoned()
            })
            .unwrap_or_else(PoisonError::into_inner);
        wanted(&mut state)
    }

    /// Stops refilling and wipes every pair held; later takes miss.
    pub fn close(&self) {
        let mut state = self.state();
        state.closed = true;
        for kept in &mut state.kept {
            kept.ready.clear();
        }
        drop(state);
        self.shared.demand.notify_all();
    }

    /// Whether no manager uses the pool any more: every
    /// [`PooledRandomness`] made with it was dropped (after at least one
    /// was made), or nothing but this handle holds it. A refilling thread
    /// then stops.
    pub fn is_orphaned(&self) -> bool {
        Arc::strong_count(&self.shared) == 1 || self.state().abandoned()
    }

    /// Whether [`Self::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.state().closed
    }

    /// Wipes every pair held (they are zeroized as they drop); the pool
    /// stays open and refills.
    pub fn clear(&self) {
        for kept in &mut self.state().kept {
            kept.ready.clear();
        }
        self.shared.demand.notify_all();
    }

    /// How full the pool is and how it was used.
    pub fn stats(&self) -> PoolStats {
        let state = self.state();
        PoolStats {
            ready: state
                .kept
                .iter()
                .map(|k| (k.slot.0, k.ready.len()))
                .collect(),
            taken: state.taken,
            missed: state.missed,
        }
    }
}

/// [`Randomness`] whose DH key pairs come from a [`KeyPairPool`] when one is
/// ready, and from `inner` otherwise; every other draw is `inner`'s.
pub struct PooledRandomness<R> {
    inner: R,
    pool: KeyPairPool,
}

impl<R: Randomness> PooledRandomness<R> {
    /// `inner` for everything, except the pairs `pool` has ready.
    pub fn new(inner: R, pool: KeyPairPool) -> Self {
        {
            let mut state = pool.state();
            state.users += 1;
            state.had_users = true;
        }
        Self { inner, pool }
    }
}

impl<R> Drop for PooledRandomness<R> {
    fn drop(&mut self) {
        let mut state = self.pool.state();
        state.users = state.users.saturating_sub(1);
        drop(state);
        // Wakes a refilling thread at once: with no user left it stops.
        self.pool.shared.demand.notify_all();
    }
}

impl<R: Randomness> Randomness for PooledRandomness<R> {
    fn fill(&mut self, purpose: RandomPurpose, out: &mut [u8]) {
        self.inner.fill(purpose, out);
    }

    fn dh_key_pair(&mut self, group: ModpGroup, size: ExponentSize) -> DhKeyPair {
        self.pool
            .take(group, size)
            .unwrap_or_else(|| self.inner.dh_key_pair(group, size))
    }

    fn permutation(&mut self, n: usize) -> Vec<usize> {
        self.inner.permutation(n)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;
    use crate::SystemRandomness;
    use rand_chacha::ChaCha20Rng;
    use rand_chacha::rand_core::SeedableRng;

    const SMALL: [ModpGroup; 2] = [ModpGroup::Group1, ModpGroup::Group2];

    fn rng(seed: u64) -> ChaCha20Rng {
        ChaCha20Rng::seed_from_u64(seed)
    }

    /// A pool fills to its bound and no further; each take removes a pair,
    /// and no pair is ever handed out twice (ESN-48).
    #[test]
    fn pairs_are_bounded_and_single_use() {
        let pool = KeyPairPool::new(&SMALL, ExponentSize::Recommended, 3);
        assert_eq!(pool.fill(&mut rng(1)), 6);
        assert_eq!(pool.fill(&mut rng(2)), 0);
        assert_eq!(pool.wanted(), None);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..3 {
            let pair = pool
                .take(ModpGroup::Group2, ExponentSize::Recommended)
                .unwrap();
            assert_eq!(pair.group(), ModpGroup::Group2);
            assert!(seen.insert(pair.public().to_mpi().to_vec()));
        }
        assert!(
            pool.take(ModpGroup::Group2, ExponentSize::Recommended)
                .is_none()
        );
        // The wrong exponent size is another slot: not served.
        assert!(pool.take(ModpGroup::Group1, ExponentSize::Full).is_none());
        let stats = pool.stats();
        assert_eq!(
            stats.ready,
            vec![(ModpGroup::Group1, 3), (ModpGroup::Group2, 0)]
        );
        assert_eq!((stats.taken, stats.missed), (3, 2));
        assert_eq!(
            pool.wanted(),
            Some((ModpGroup::Group2, ExponentSize::Recommended))
        );
        // Refilled pairs are fresh too.
        pool.fill(&mut rng(3));
        while let Some(pair) = pool.take(ModpGroup::Group2, ExponentSize::Recommended) {
            assert!(seen.insert(pair.public().to_mpi().to_vec()));
        }
    }

    /// A pair for a group the pool does not keep, or beyond its bound, is
    /// dropped, not kept; the bound is capped.
    #[test]
    fn put_refuses_unknown_groups_and_overflow() {
        let pool = KeyPairPool::new(&[ModpGroup::Group1], ExponentSize::Recommended, 1);
        let mut r = rng(4);
        let other = DhKeyPair::generate(ModpGroup::Group2, ExponentSize::Recommended, &mut r);
        assert!(!pool.put(other, ExponentSize::Recommended));
        let first = DhKeyPair::generate(ModpGroup::Group1, ExponentSize::Recommended, &mut r);
        let second = DhKeyPair::generate(ModpGroup::Group1, ExponentSize::Recommended, &mut r);
        assert!(pool.put(first, ExponentSize::Recommended));
        assert!(!pool.put(second, ExponentSize::Recommended));
        let huge = KeyPairPool::new(&[ModpGroup::Group1], ExponentSize::Recommended, 1_000_000);
        assert_eq!(
            huge.shared.state.lock().unwrap().kept[0].target,
            MAX_PAIRS_PER_GROUP
        );
    }

    /// Closing wipes what the pool holds and stops refilling; a waiting
    /// refiller wakes at once.
    #[test]
    fn close_wipes_and_wakes() {
        let pool = KeyPairPool::new(&SMALL, ExponentSize::Recommended, 1);
        pool.fill(&mut rng(5));
        let waiter = {
            let pool = pool.clone();
            std::thread::spawn(move || pool.wait_for_demand(Duration::from_secs(60)))
        };
        pool.close();
        assert!(!waiter.join().unwrap());
        assert!(pool.is_closed());
        assert_eq!(pool.stats().ready, vec![(SMALL[0], 0), (SMALL[1], 0)]);
        assert!(!pool.refill_one(&mut rng(6)));
        assert!(
            pool.take(ModpGroup::Group1, ExponentSize::Recommended)
                .is_none()
        );
    }

    /// Dropping the last randomness that uses the pool abandons it: nothing
    /// is wanted any more, and a waiting refiller wakes at once.
    #[test]
    fn dropping_the_last_user_abandons_the_pool() {
        let pool = KeyPairPool::new(&[ModpGroup::Group1], ExponentSize::Recommended, 1);
        let randomness = PooledRandomness::new(SystemRandomness::new(rng(11)), pool.clone());
        let second = PooledRandomness::new(SystemRandomness::new(rng(12)), pool.clone());
        pool.fill(&mut rng(13));
        let waiter = {
            let pool = pool.clone();
            std::thread::spawn(move || {
                let start = std::time::Instant::now();
                pool.wait_for_demand(Duration::from_secs(60));
                start.elapsed()
            })
        };
        drop(randomness);
        assert!(!pool.is_orphaned(), "one user is left");
        drop(second);
        assert!(waiter.join().unwrap() < Duration::from_secs(30));
        assert!(pool.is_orphaned());
        assert_eq!(pool.wanted(), None);
    }

    /// A take wakes a refiller waiting for room.
    #[test]
    fn a_take_signals_demand() {
        let pool = KeyPairPool::new(&[ModpGroup::Group1], ExponentSize::Recommended, 1);
        pool.fill(&mut rng(7));
        assert!(!pool.wait_for_demand(Duration::from_millis(1)));
        let waiter = {
            let pool = pool.clone();
            std::thread::spawn(move || pool.wait_for_demand(Duration::from_secs(60)))
        };
        pool.take(ModpGroup::Group1, ExponentSize::Recommended)
            .unwrap();
        assert!(waiter.join().unwrap());
    }

    /// The pooled randomness serves pooled pairs first, then computes them
    /// (the cold path), and passes every other draw through untouched.
    #[test]
    fn pooled_randomness_falls_back_to_computing() {
        let pool = KeyPairPool::new(&[ModpGroup::Group1], ExponentSize::Recommended, 1);
        pool.fill(&mut rng(8));
        let mut pooled = PooledRandomness::new(SystemRandomness::new(rng(9)), pool.clone());
        let mut direct = SystemRandomness::new(rng(9));
        // From the pool: the inner generator is not touched.
        let a = pooled.dh_key_pair(ModpGroup::Group1, ExponentSize::Recommended);
        let (mut x, mut y) = ([0u8; 16], [0u8; 16]);
        pooled.fill(RandomPurpose::Nonce, &mut x);
        direct.fill(RandomPurpose::Nonce, &mut y);
        assert_eq!(x, y);
        // Computed: exactly what the inner generator computes.
        let b = pooled.dh_key_pair(ModpGroup::Group1, ExponentSize::Recommended);
        let c = direct.dh_key_pair(ModpGroup::Group1, ExponentSize::Recommended);
        assert_eq!(b.public().to_mpi(), c.public().to_mpi());
        assert_ne!(a.public().to_mpi(), b.public().to_mpi());
        assert_eq!((pool.stats().taken, pool.stats().missed), (1, 1));
    }

    /// Pairs waiting in the pool are wiped when dropped (the exponent is
    /// `ZeroizeOnDrop`); checked at compile time.
    #[test]
    fn pooled_pairs_zeroize_on_drop() {
        fn zeroized_on_drop<T: zeroize::ZeroizeOnDrop>() {}
        zeroized_on_drop::<DhKeyPair>();
    }

    /// The pool's `Debug` shows counts, never key material.
    #[test]
    fn debug_shows_counts_only() {
        let pool = KeyPairPool::new(&[ModpGroup::Group1], ExponentSize::Recommended, 1);
        pool.fill(&mut rng(10));
        let text = format!("{pool:?}");
        assert!(text.starts_with("KeyPairPool { stats: PoolStats"), "{text}");
        assert!(!text.contains("exponent"), "{text}");
    }
}
