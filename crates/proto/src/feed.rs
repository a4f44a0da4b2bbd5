//! What a parent sends a child on one link (D3, D4): the whole stream, some of its
//! k substreams (block `seq mod k`), or nothing but periodic `Have` summaries from
//! which the child pulls what it misses (`Want`) — the lazy links of the top-level
//! mesh and the repair links of the peers.

use serde::{Deserialize, Serialize};

/// Most substreams a peer overlay splits a stream into (one bit each in a mask).
pub const MAX_FEED_SUBSTREAMS: u8 = 64;

/// A set of the k substreams of a stream: substream `i` carries the blocks with
/// `seq mod k == i`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SubstreamSet {
    pub k: u8,
    pub mask: u64,
}

impl SubstreamSet {
    /// The empty set of `k` substreams; `None` unless 1 ≤ k ≤ 64.
    pub fn empty(k: u8) -> Option<Self> {
        (1..=MAX_FEED_SUBSTREAMS)
            .contains(&k)
            .then_some(SubstreamSet { k, mask: 0 })
    }

    /// Every substream of `k`.
    pub fn all(k: u8) -> Option<Self> {
        let mut s = Self::empty(k)?;
        s.mask = if k == 64 { u64::MAX } else { (1u64 << k) - 1 };
        Some(s)
    }

    /// `{i}` of `k`; `None` when `i ≥ k` or k is out of range.
    pub fn single(k: u8, i: u8) -> Option<Self> {
        let mut s = Self::empty(k)?;
        (i < k).then(|| {
            s.mask = 1u64 << i;
            s
        })
    }

    pub fn with(mut self, i: u8) -> Self {
        if i < self.k {
            self.mask |= 1u64 << i;
        }
        self
    }

    /// Well formed: 1 ≤ k ≤ 64, no bit at or above k, not empty.
    pub fn is_valid(&self) -> bool {
        match Self::all(self.k) {
            Some(all) => self.mask != 0 && self.mask & !all.mask == 0,
            None => false,
        }
    }

    pub fn contains_seq(&self, seq: u64) -> bool {
        self.k > 0 && self.mask & (1u64 << (seq % u64::from(self.k))) != 0
    }

    pub fn len(&self) -> u32 {
        self.mask.count_ones()
    }

    pub fn is_empty(&self) -> bool {
        self.mask == 0
    }

    pub fn indices(&self) -> impl Iterator<Item = u8> + '_ {
        (0..self.k).filter(move |i| self.mask & (1u64 << i) != 0)
    }
}

/// What a LOGIN asks of a parent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Feed {
    /// Every block (relays, viewers, the top level's push tree).
    #[default]
    All,
    /// Only these substreams (the bottom multi-tree, D4).
    Substreams(SubstreamSet),
    /// No blocks pushed: `Have` summaries, and blocks on `Want` (D3's mesh links).
    Lazy,
}

impl Feed {
    /// Whether a block of this seq is pushed on the link.
    pub fn pushes(&self, seq: u64) -> bool {
        match self {
            Feed::All => true,
            Feed::Substreams(s) => s.contains_seq(seq),
            Feed::Lazy => false,
        }
    }

    /// Fraction of the stream pushed on the link.
    pub fn share(&self) -> f64 {
        match self {
            Feed::All => 1.0,
            Feed::Substreams(s) => f64::from(s.len()) / f64::from(s.k.max(1)),
            Feed::Lazy => 0.0,
        }
    }

    pub fn is_valid(&self) -> bool {
        match self {
            Feed::Substreams(s) => s.is_valid(),
            _ => true,
        }
    }
}

/// Most seqs in one `Want`.
pub const MAX_WANT_SEQS: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substream_membership_follows_seq_mod_k() {
        let s = SubstreamSet::single(4, 1).unwrap().with(3);
        let got: Vec<u64> = (0..9).filter(|q| s.contains_seq(*q)).collect();
        assert_eq!(got, vec![1, 3, 5, 7]);
        assert_eq!(s.len(), 2);
        assert_eq!(s.indices().collect::<Vec<_>>(), vec![1, 3]);
        assert!(Feed::Substreams(s).pushes(7) && !Feed::Substreams(s).pushes(8));
        assert!((Feed::Substreams(s).share() - 0.5).abs() < 1e-9);
    }

    #[test]
    fn malformed_sets_are_refused() {
        assert!(SubstreamSet::empty(0).is_none());
        assert!(SubstreamSet::all(65).is_none());
        assert!(SubstreamSet::single(4, 4).is_none());
        assert!(!SubstreamSet {
            k: 4,
            mask: 0b1_0000
        }
        .is_valid());
        assert!(!SubstreamSet { k: 4, mask: 0 }.is_valid());
        assert!(!Feed::Substreams(SubstreamSet { k: 0, mask: 1 }).is_valid());
        assert!(SubstreamSet::all(64).unwrap().is_valid());
    }
}
