//! Substreams of the bottom-level multi-tree (D4, seed 003): the stream is cut
//! into k substreams, block `seq` belonging to substream `seq mod k`, each at
//! rate r/k and carried by its own tree. Helpers to split a run of blocks into
//! substreams and to merge them back in seq order without duplicates.

use std::collections::BTreeMap;
use tiercast_proto::Block;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SubstreamError {
    #[error("a stream needs at least one substream")]
    NoSubstreams,
}

/// A validated substream count k.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Substreams {
    k: u32,
}

impl Substreams {
    pub fn new(k: u32) -> Result<Self, SubstreamError> {
        if k == 0 {
            return Err(SubstreamError::NoSubstreams);
        }
        Ok(Substreams { k })
    }

    pub fn count(&self) -> u32 {
        self.k
    }

    /// The substream (tree) that carries block `seq`.
    pub fn of(&self, seq: u64) -> u32 {
        (seq % u64::from(self.k)) as u32
    }

    /// The j-th seq of `substream` (`j·k + substream`); None past u64 or for a bad index.
    pub fn seq_at(&self, substream: u32, j: u64) -> Option<u64> {
        if substream >= self.k {
            return None;
        }
        j.checked_mul(u64::from(self.k))?
            .checked_add(u64::from(substream))
    }

    /// The first seq ≥ `from` that belongs to `substream` (where a joining child resumes).
    pub fn next_seq_from(&self, substream: u32, from: u64) -> Option<u64> {
        let candidate = self.seq_at(substream, from / u64::from(self.k))?;
        if candidate >= from {
            Some(candidate)
        } else {
            candidate.checked_add(u64::from(self.k))
        }
    }

    /// Rate of one substream: r/k, rounded up so k substreams never under-book r.
    pub fn substream_rate_bps(&self, stream_rate_bps: u64) -> u64 {
        stream_rate_bps.div_ceil(u64::from(self.k))
    }

    /// The blocks of each substream, in the order given.
    pub fn split(&self, blocks: impl IntoIterator<Item = Block>) -> Vec<Vec<Block>> {
        let mut out = vec![Vec::new(); self.k as usize];
        for b in blocks {
            out[self.of(b.seq) as usize].push(b);
        }
        out
    }

    /// All blocks of the substreams in seq order, the first copy of each seq kept.
    pub fn merge(&self, substreams: impl IntoIterator<Item = Vec<Block>>) -> Vec<Block> {
        let mut by_seq = BTreeMap::new();
        for b in substreams.into_iter().flatten() {
            by_seq.entry(b.seq).or_insert(b);
        }
        by_seq.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use proptest::prelude::*;
    use tiercast_proto::{ChannelId, Timestamp};

    fn block(seq: u64) -> Block {
        Block::new(
            ChannelId(1),
            seq,
            Timestamp::from_millis(seq),
            seq.is_multiple_of(10),
            Bytes::from(seq.to_be_bytes().to_vec()),
        )
    }

    #[test]
    fn seq_mod_k() {
        assert_eq!(Substreams::new(0), Err(SubstreamError::NoSubstreams));
        let s = Substreams::new(4).expect("valid");
        assert_eq!((s.of(0), s.of(5), s.of(11)), (0, 1, 3));
        assert_eq!(s.seq_at(3, 2), Some(11));
        assert_eq!(s.seq_at(4, 0), None);
        assert_eq!(s.seq_at(1, u64::MAX), None);
        assert_eq!(s.next_seq_from(1, 0), Some(1));
        assert_eq!(s.next_seq_from(1, 2), Some(5));
        assert_eq!(s.next_seq_from(3, 11), Some(11));
        assert_eq!(s.next_seq_from(0, 9), Some(12));
        assert_eq!(s.substream_rate_bps(1_000_001), 250_001);
    }

    proptest! {
        #[test]
        fn split_then_merge_is_the_sorted_stream(
            k in 1u32..12,
            seqs in proptest::collection::vec(0u64..500, 0..80),
        ) {
            let s = Substreams::new(k).expect("valid");
            let parts = s.split(seqs.iter().map(|&q| block(q)));
            prop_assert_eq!(parts.len(), k as usize);
            for (i, part) in parts.iter().enumerate() {
                prop_assert!(part.iter().all(|b| s.of(b.seq) == i as u32));
            }
            let merged: Vec<u64> = s.merge(parts).iter().map(|b| b.seq).collect();
            let mut expected = seqs.clone();
            expected.sort_unstable();
            expected.dedup();
            prop_assert_eq!(merged, expected);
        }

        #[test]
        fn next_seq_from_is_the_least_member_at_or_after(
            k in 1u32..12, sub in 0u32..12, from in 0u64..10_000,
        ) {
            let s = Substreams::new(k).expect("valid");
            let next = s.next_seq_from(sub, from);
            if sub >= k {
                prop_assert_eq!(next, None);
            } else {
                let expected = (from..from + u64::from(k)).find(|&q| s.of(q) == sub);
                prop_assert_eq!(next, expected);
            }
        }
    }
}
