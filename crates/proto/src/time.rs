//! `Timestamp`: microseconds on a monotonic clock handed in by the driver
//! (the tokio driver's `Instant`, or the simulator's virtual clock starting at 0).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::{Add, Sub};

#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Timestamp(pub u64);

impl Timestamp {
    pub const ZERO: Timestamp = Timestamp(0);

    pub fn from_millis(ms: u64) -> Self {
        Timestamp(ms.saturating_mul(1000))
    }
    pub fn from_secs(s: u64) -> Self {
        Timestamp(s.saturating_mul(1_000_000))
    }
    pub fn as_micros(self) -> u64 {
        self.0
    }
    pub fn as_millis(self) -> u64 {
        self.0 / 1000
    }
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }
    /// `self - earlier`, or zero when `earlier` is later.
    pub fn saturating_since(self, earlier: Timestamp) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
    pub fn plus_millis(self, ms: u64) -> Self {
        Timestamp(self.0.saturating_add(ms.saturating_mul(1000)))
    }
}

impl Add<u64> for Timestamp {
    type Output = Timestamp;
    /// Adds microseconds.
    fn add(self, us: u64) -> Timestamp {
        Timestamp(self.0.saturating_add(us))
    }
}

impl Sub for Timestamp {
    type Output = u64;
    /// Microseconds between two timestamps (saturating at 0).
    fn sub(self, rhs: Timestamp) -> u64 {
        self.0.saturating_sub(rhs.0)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.6}s", self.as_secs_f64())
    }
}
