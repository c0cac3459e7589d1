//! The CSPRNG the CLI injects into the core: ChaCha20 seeded once from the OS.

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use zeroize::Zeroizing;

/// A ChaCha20 CSPRNG seeded from the operating system (CMN-07). Seeding is the
/// only fallible step, so later draws cannot fail.
pub(crate) fn os_seeded() -> Result<ChaCha20Rng, String> {
    let mut seed = Zeroizing::new([0u8; 32]);
    getrandom::fill(seed.as_mut()).map_err(|e| format!("operating-system RNG unavailable: {e}"))?;
    Ok(ChaCha20Rng::from_seed(*seed))
}
