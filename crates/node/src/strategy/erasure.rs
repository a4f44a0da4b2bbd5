//! Erasure-coded `k+n` groups for the middle level (D5, seed 003): the blocks of
//! group `j` are the k consecutive seqs `j·k .. j·k+k-1`; Reed–Solomon adds n
//! recovery shards, and any k of the k+n shards rebuild the whole group.
//!
//! Originals travel as ordinary blocks (zero-copy); only the coder sees their
//! coded form: a 4-byte little-endian length, the payload, then zeros up to the
//! group's shard size (the longest payload plus the prefix, rounded up to even
//! as `reed-solomon-simd` requires). Recovery shards therefore carry the
//! original lengths, and a rebuilt payload is restored byte-for-byte.
//! The redundancy n per cluster comes from its measured loss
//! ([`redundancy_for_loss`]). Rebuilt blocks still go through the origin
//! signature check: this code detects malformed shards, not forged ones.

use bytes::Bytes;
use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};
use std::collections::BTreeMap;

pub use tiercast_proto::redundancy::MAX_GROUP_SHARDS;
/// Groups an [`ErasureEncoder`] keeps open while waiting for their blocks.
pub const MAX_PENDING_GROUPS: usize = 16;
const LEN_PREFIX: usize = 4;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ErasureError {
    #[error("an erasure group needs k >= 1 original shards")]
    NoOriginals,
    #[error("k + n = {total} exceeds the limit of {MAX_GROUP_SHARDS} shards per group")]
    TooManyShards { total: usize },
    #[error("a group has {expected} originals, {got} were given")]
    WrongOriginalCount { expected: usize, got: usize },
    #[error("payload of {len} bytes is too long to erasure-code")]
    PayloadTooLong { len: usize },
    #[error("shard index {index} is outside the {total} shards of a group")]
    IndexOutOfRange { index: usize, total: usize },
    #[error("shard {index} is {got} bytes where the group's shards need {expected}")]
    ShardSizeMismatch {
        index: usize,
        expected: usize,
        got: usize,
    },
    #[error("shard {index} of group {group} was already received")]
    DuplicateShard { group: u64, index: usize },
    #[error("rebuilt original {index} has an impossible length header (corrupt shards)")]
    Corrupt { index: usize },
    #[error("reed-solomon codec: {0}")]
    Codec(#[from] reed_solomon_simd::Error),
}

/// A validated `k+n` layout and the seq arithmetic of its groups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErasureParams {
    k: usize,
    n: usize,
}

impl ErasureParams {
    pub fn new(k: usize, n: usize) -> Result<Self, ErasureError> {
        if k == 0 {
            return Err(ErasureError::NoOriginals);
        }
        match k.checked_add(n) {
            Some(total) if total <= MAX_GROUP_SHARDS => Ok(ErasureParams { k, n }),
            _ => Err(ErasureError::TooManyShards {
                total: k.saturating_add(n),
            }),
        }
    }
    /// k: original shards (blocks) per group.
    pub fn originals(&self) -> usize {
        self.k
    }
    /// n: recovery shards per group.
    pub fn recovery(&self) -> usize {
        self.n
    }
    pub fn total(&self) -> usize {
        self.k + self.n
    }
    pub fn group_of(&self, seq: u64) -> u64 {
        seq / self.k as u64
    }
    /// Shard index of a block inside its group (an original: `< k`).
    pub fn index_in_group(&self, seq: u64) -> usize {
        (seq % self.k as u64) as usize
    }
    /// Seq of original `index` of `group`; None for a recovery index or overflow.
    pub fn seq_of(&self, group: u64, index: usize) -> Option<u64> {
        if index >= self.k {
            return None;
        }
        group.checked_mul(self.k as u64)?.checked_add(index as u64)
    }
}

fn shard_bytes_for(max_payload: usize) -> usize {
    (LEN_PREFIX + max_payload).next_multiple_of(2)
}

/// The coded form of an original: length prefix, payload, zero padding.
fn coded_original(payload: &[u8], shard_bytes: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(shard_bytes);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    out.resize(shard_bytes, 0);
    out
}

/// Turns k originals of a group into n recovery shards.
#[derive(Debug)]
pub struct ErasureEncoder {
    params: ErasureParams,
    pending: BTreeMap<u64, Vec<Option<Bytes>>>,
    dropped_groups: u64,
}

/// The recovery shards of one group; `shards[j]` has shard index `k + j`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryGroup {
    pub group: u64,
    pub shards: Vec<Bytes>,
}

impl ErasureEncoder {
    pub fn new(params: ErasureParams) -> Self {
        ErasureEncoder {
            params,
            pending: BTreeMap::new(),
            dropped_groups: 0,
        }
    }
    pub fn params(&self) -> ErasureParams {
        self.params
    }
    /// Groups given up because more than [`MAX_PENDING_GROUPS`] were open.
    pub fn dropped_groups(&self) -> u64 {
        self.dropped_groups
    }

    /// The n recovery shards of the k `originals` (in group order).
    pub fn encode_group<P: AsRef<[u8]>>(
        &self,
        originals: &[P],
    ) -> Result<Vec<Bytes>, ErasureError> {
        let (k, n) = (self.params.k, self.params.n);
        if originals.len() != k {
            return Err(ErasureError::WrongOriginalCount {
                expected: k,
                got: originals.len(),
            });
        }
        let max_len = originals
            .iter()
            .map(|p| p.as_ref().len())
            .max()
            .unwrap_or(0);
        if max_len > u32::MAX as usize - LEN_PREFIX - 1 {
            return Err(ErasureError::PayloadTooLong { len: max_len });
        }
        if n == 0 {
            return Ok(Vec::new());
        }
        let shard_bytes = shard_bytes_for(max_len);
        let mut encoder = ReedSolomonEncoder::new(k, n, shard_bytes)?;
        for p in originals {
            encoder.add_original_shard(coded_original(p.as_ref(), shard_bytes))?;
        }
        let result = encoder.encode()?;
        Ok(result.recovery_iter().map(Bytes::copy_from_slice).collect())
    }

    /// Feeds one block; returns the group's recovery shards once its k blocks are in.
    pub fn push(
        &mut self,
        seq: u64,
        payload: Bytes,
    ) -> Result<Option<RecoveryGroup>, ErasureError> {
        let (group, index) = (self.params.group_of(seq), self.params.index_in_group(seq));
        let k = self.params.k;
        let slots = self.pending.entry(group).or_insert_with(|| vec![None; k]);
        if slots[index].is_some() {
            return Err(ErasureError::DuplicateShard { group, index });
        }
        slots[index] = Some(payload);
        if slots.iter().all(Option::is_some) {
            let originals: Vec<Bytes> = self
                .pending
                .remove(&group)
                .expect("group was just filled")
                .into_iter()
                .map(|p| p.expect("every slot is filled"))
                .collect();
            let shards = self.encode_group(&originals)?;
            return Ok(Some(RecoveryGroup { group, shards }));
        }
        while self.pending.len() > MAX_PENDING_GROUPS {
            self.pending.pop_first();
            self.dropped_groups += 1;
        }
        Ok(None)
    }
}

/// Where a group's decoding stands after a shard arrived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeProgress {
    Pending {
        have: usize,
        need: usize,
    },
    /// The group just became whole; `restored` are the originals that were missing.
    Complete {
        restored: Vec<(usize, Bytes)>,
    },
    /// The group was already whole; the shard is not needed.
    AlreadyComplete,
}

/// Collects one group's shards and rebuilds it as soon as any k are in.
#[derive(Debug)]
pub struct ErasureDecoder {
    params: ErasureParams,
    group: u64,
    /// Received or rebuilt payloads.
    originals: Vec<Option<Bytes>>,
    recovery: BTreeMap<usize, Bytes>,
    /// Shard indices received (a rebuilt original arriving later is not a duplicate).
    received: Vec<bool>,
    shard_bytes: Option<usize>,
    complete: bool,
}

impl ErasureDecoder {
    pub fn new(params: ErasureParams, group: u64) -> Self {
        ErasureDecoder {
            params,
            group,
            originals: vec![None; params.k],
            recovery: BTreeMap::new(),
            received: vec![false; params.total()],
            shard_bytes: None,
            complete: false,
        }
    }
    pub fn group(&self) -> u64 {
        self.group
    }
    pub fn is_complete(&self) -> bool {
        self.complete
    }
    /// Distinct shards received.
    pub fn have(&self) -> usize {
        self.received.iter().filter(|r| **r).count()
    }
    /// All k payloads in group order, once the group is whole.
    pub fn originals(&self) -> Option<Vec<Bytes>> {
        self.complete
            .then(|| self.originals.iter().flatten().cloned().collect())
    }

    /// A shard by group index: `0..k` originals (block payloads), `k..k+n` recovery.
    /// A `Corrupt` or `Codec` error means a held shard was bad and the group
    /// cannot be rebuilt here: drop the decoder.
    pub fn insert(&mut self, index: usize, data: Bytes) -> Result<DecodeProgress, ErasureError> {
        let total = self.params.total();
        if index >= total {
            return Err(ErasureError::IndexOutOfRange { index, total });
        }
        if self.received[index] {
            return Err(ErasureError::DuplicateShard {
                group: self.group,
                index,
            });
        }
        if self.complete {
            self.received[index] = true;
            return Ok(DecodeProgress::AlreadyComplete);
        }
        match index.checked_sub(self.params.k) {
            None => self.accept_original(index, data)?,
            Some(j) => self.accept_recovery(index, j, data)?,
        }
        self.received[index] = true;
        let (have, need) = (self.have(), self.params.k);
        if have < need {
            return Ok(DecodeProgress::Pending { have, need });
        }
        let restored = self.rebuild()?;
        Ok(DecodeProgress::Complete { restored })
    }

    fn accept_original(&mut self, index: usize, payload: Bytes) -> Result<(), ErasureError> {
        if let Some(expected) = self.shard_bytes {
            let got = LEN_PREFIX + payload.len();
            if got > expected {
                return Err(ErasureError::ShardSizeMismatch {
                    index,
                    expected,
                    got,
                });
            }
        }
        self.originals[index] = Some(payload);
        Ok(())
    }

    fn accept_recovery(
        &mut self,
        index: usize,
        j: usize,
        shard: Bytes,
    ) -> Result<(), ErasureError> {
        let got = shard.len();
        let expected = match self.shard_bytes {
            Some(size) => size,
            None => {
                let longest = self.originals.iter().flatten().map(Bytes::len).max();
                shard_bytes_for(longest.unwrap_or(0)).max(got.next_multiple_of(2))
            }
        };
        if got != expected {
            return Err(ErasureError::ShardSizeMismatch {
                index,
                expected,
                got,
            });
        }
        self.shard_bytes = Some(got);
        self.recovery.insert(j, shard);
        Ok(())
    }

    fn rebuild(&mut self) -> Result<Vec<(usize, Bytes)>, ErasureError> {
        let k = self.params.k;
        let missing: Vec<usize> = (0..k).filter(|&i| self.originals[i].is_none()).collect();
        if missing.is_empty() {
            self.complete = true;
            return Ok(Vec::new());
        }
        let shard_bytes = self
            .shard_bytes
            .expect("a missing original means a recovery shard is held");
        let mut decoder = ReedSolomonDecoder::new(k, self.params.n, shard_bytes)?;
        for (i, payload) in self.originals.iter().enumerate() {
            if let Some(p) = payload {
                decoder.add_original_shard(i, coded_original(p, shard_bytes))?;
            }
        }
        for (j, shard) in &self.recovery {
            decoder.add_recovery_shard(*j, shard)?;
        }
        let result = decoder.decode()?;
        let mut restored = Vec::with_capacity(missing.len());
        for &i in &missing {
            let coded = result
                .restored_original(i)
                .ok_or(ErasureError::Corrupt { index: i })?;
            let len = u32::from_le_bytes(coded[..LEN_PREFIX].try_into().expect("4 bytes")) as usize;
            if len > shard_bytes - LEN_PREFIX {
                return Err(ErasureError::Corrupt { index: i });
            }
            restored.push((
                i,
                Bytes::copy_from_slice(&coded[LEN_PREFIX..LEN_PREFIX + len]),
            ));
        }
        for (i, payload) in &restored {
            self.originals[*i] = Some(payload.clone());
        }
        self.complete = true;
        Ok(restored)
    }
}

pub use tiercast_proto::redundancy::{group_loss_probability, redundancy_for_loss};

#[cfg(test)]
mod tests;
