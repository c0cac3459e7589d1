//! Injected time: the core never reads a clock.

/// Seconds since the Unix epoch, supplied by the caller.
pub trait Clock {
    /// The current time in seconds since 1970-01-01T00:00:00Z.
    fn now_unix(&self) -> u64;
}

/// A clock that always reads the same instant: for tests and replays.
#[derive(Clone, Copy, Debug, Default)]
pub struct FixedClock(pub u64);

impl Clock for FixedClock {
    fn now_unix(&self) -> u64 {
        self.0
    }
}
