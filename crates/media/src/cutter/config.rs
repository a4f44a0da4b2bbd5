//! Block cutter settings and their validation (feature X1).

use thiserror::Error;

use crate::probe::SYNC_RUN;
use crate::ts::PACKET_SIZE;

/// Smallest block: inserted PAT + PMT, the keyframe packet, one more.
pub(super) const MIN_BLOCK_PACKETS: usize = 4;
/// Largest probe window accepted.
pub(super) const MAX_PROBE_BYTES: usize = 1 << 20;

/// Block cutter settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CutterConfig {
    /// Upper bound of a block; rounded down to whole packets, at least 4 packets.
    pub max_block_bytes: usize,
    /// Bytes examined before deciding the input is not MPEG-TS.
    pub probe_bytes: usize,
}

impl Default for CutterConfig {
    fn default() -> Self {
        CutterConfig {
            max_block_bytes: 348 * PACKET_SIZE, // 65 424 bytes, just under 64 KiB
            probe_bytes: 8 * PACKET_SIZE,
        }
    }
}

/// A configuration value out of range.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CutterConfigError {
    #[error("max_block_bytes = {0}: must be at least {min} (4 packets of 188 bytes)", min = MIN_BLOCK_PACKETS * PACKET_SIZE)]
    BlockTooSmall(usize),
    #[error("probe_bytes = {0}: must be between {min} and {max}", min = (SYNC_RUN - 1) * PACKET_SIZE + 1, max = MAX_PROBE_BYTES)]
    ProbeOutOfRange(usize),
}

impl CutterConfig {
    /// Checks the ranges that [`BlockCutter::new`] would otherwise clamp.
    pub fn validate(&self) -> Result<(), CutterConfigError> {
        if self.max_block_bytes < MIN_BLOCK_PACKETS * PACKET_SIZE {
            return Err(CutterConfigError::BlockTooSmall(self.max_block_bytes));
        }
        let min_probe = (SYNC_RUN - 1) * PACKET_SIZE + 1;
        if !(min_probe..=MAX_PROBE_BYTES).contains(&self.probe_bytes) {
            return Err(CutterConfigError::ProbeOutOfRange(self.probe_bytes));
        }
        Ok(())
    }
}
