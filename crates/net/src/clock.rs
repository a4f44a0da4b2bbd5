//! The network driver's clock: microseconds since the driver started, as the
//! machines' `Timestamp`; and wall-clock microseconds for block origin times.

use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tiercast_proto::Timestamp;

#[derive(Clone, Copy, Debug)]
pub struct Clock {
    start: Instant,
}

impl Default for Clock {
    fn default() -> Self {
        Clock {
            start: Instant::now(),
        }
    }
}

impl Clock {
    pub fn now(&self) -> Timestamp {
        Timestamp(self.start.elapsed().as_micros() as u64)
    }

    /// The `Instant` of a machine timestamp (for `sleep_until`).
    pub fn instant(&self, t: Timestamp) -> tokio::time::Instant {
        tokio::time::Instant::from_std(self.start + std::time::Duration::from_micros(t.as_micros()))
    }
}

/// Microseconds since the Unix epoch (block origin times, shared by all processes).
pub fn wall_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}
