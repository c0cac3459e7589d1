//! XEP-0201 ThreadIDs (THR-01..06).

use crate::random::{RandomPurpose, Randomness};

/// Bytes of randomness in a ThreadID we mint (THR-06: at least 128 bits).
pub const THREAD_ID_BYTES: usize = 16;

/// A fresh, unguessable ThreadID: 128 random bits as lower-case hex (THR-02, THR-06).
pub fn new_thread_id(rng: &mut dyn Randomness) -> String {
    let mut bytes = [0u8; THREAD_ID_BYTES];
    rng.fill(RandomPurpose::ThreadId, &mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
