//! Issue 16: the thread that keeps a [`KeyPairPool`] full, so that the core
//! (which only takes pairs through its injected randomness) starts and
//! answers negotiations without computing DH key pairs on the hot path.

use std::time::Duration;

use esession::KeyPairPool;
use esession_crypto::rand_core::CryptoRng;

/// How long the refilling thread sleeps when nothing is taken before it
/// checks whether its pool is still in use.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// Starts a background thread that refills `pool` with pairs drawn from
/// `rng` (a CSPRNG seeded from the operating system) whenever a pair is
/// taken. The thread stops, wiping what the pool still holds, once the pool
/// is closed or nothing else holds it (the manager using it is dropped).
/// If the thread cannot be started the pool stays empty and every pair is
/// computed on demand, as without a pool. Dropping the returned handle
/// detaches the thread; it still stops as described.
pub fn spawn_refiller<R>(
    pool: KeyPairPool,
    mut rng: R,
) -> std::io::Result<std::thread::JoinHandle<()>>
where
    R: CryptoRng + Send + 'static,
{
    std::thread::Builder::new()
        .name("esession-key-pool".to_owned())
        .spawn(move || {
            loop {
                while !pool.is_orphaned() && pool.refill_one(&mut rng) {}
                if pool.is_closed() || pool.is_orphaned() {
                    break;
                }
                pool.wait_for_demand(IDLE_CHECK);
            }
            tracing::debug!("key-pair pool refiller stopped");
            pool.close();
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;
    use esession::{PooledRandomness, Randomness, SystemRandomness};
    use esession_crypto::{ExponentSize, ModpGroup};
    use rand_chacha::ChaCha20Rng;
    use rand_chacha::rand_core::SeedableRng;
    use std::time::Instant;

    fn wait_until(what: impl Fn() -> bool) {
        let start = Instant::now();
        while !what() {
            assert!(start.elapsed() < Duration::from_secs(30), "timed out");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// The thread fills the pool, refills what is taken, and stops once the
    /// randomness using the pool is dropped.
    #[test]
    fn the_refiller_keeps_the_pool_full_and_stops_with_its_user() {
        let pool = KeyPairPool::new(&[ModpGroup::Group1], ExponentSize::Recommended, 2);
        let mut randomness = PooledRandomness::new(
            SystemRandomness::new(ChaCha20Rng::seed_from_u64(1)),
            pool.clone(),
        );
        let thread = spawn_refiller(pool.clone(), ChaCha20Rng::seed_from_u64(2)).unwrap();
        wait_until(|| pool.wanted().is_none());
        randomness.dh_key_pair(ModpGroup::Group1, ExponentSize::Recommended);
        randomness.dh_key_pair(ModpGroup::Group1, ExponentSize::Recommended);
        wait_until(|| pool.wanted().is_none());
        let stats = pool.stats();
        assert_eq!((stats.taken, stats.missed), (2, 0));
        assert_eq!(stats.ready, vec![(ModpGroup::Group1, 2)]);
        // Once its user (the manager's randomness) is gone, the thread stops
        // at once, though we still hold a handle, and wipes the pool.
        drop(randomness);
        wait_until(|| thread.is_finished());
        thread.join().unwrap();
        assert!(pool.is_closed());
        assert_eq!(pool.stats().ready, vec![(ModpGroup::Group1, 0)]);
    }

    /// Closing the pool stops the thread too, and it wipes the pool.
    #[test]
    fn closing_the_pool_stops_the_refiller() {
        let pool = KeyPairPool::new(&[ModpGroup::Group1], ExponentSize::Recommended, 1);
        let thread = spawn_refiller(pool.clone(), ChaCha20Rng::seed_from_u64(3)).unwrap();
        wait_until(|| pool.wanted().is_none());
        pool.close();
        wait_until(|| thread.is_finished());
        assert_eq!(pool.stats().ready, vec![(ModpGroup::Group1, 0)]);
    }
}
