//! What a parent sends a child on one link (D3, D4): the whole stream, some of its
//! k substreams (block `seq mod k`), or nothing but periodic `Have` summaries from
//! which the child pulls what it misses (`Want`) — the lazy links of the top-level
//! mesh and the repair links of the peers — or, at the middle level (D5), some of
//! the k+n erasure-coded substreams: the k originals (block `seq mod k`) and the n
//! recovery shards of every group of k consecutive blocks.

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

/// Some of the k+n erasure-coded substreams of the middle level (D5): index
/// `i < k` is substream i (the blocks with `seq mod k == i`, sent as blocks), index
/// `k + j` is recovery shard j of every group `seq / k` (sent as `Shard`s).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CodedSet {
    pub k: u8,
    pub n: u8,
    pub mask: u64,
}

impl CodedSet {
    /// The empty set of k+n; `None` unless k ≥ 1 and k+n ≤ 64.
    pub fn empty(k: u8, n: u8) -> Option<Self> {
        let total = u16::from(k) + u16::from(n);
        (k >= 1 && total <= u16::from(MAX_FEED_SUBSTREAMS)).then_some(CodedSet { k, n, mask: 0 })
    }

    /// With index `i` (of k+n) added; out-of-range indices are ignored.
    pub fn with(mut self, i: u8) -> Self {
        if u16::from(i) < u16::from(self.k) + u16::from(self.n) {
            self.mask |= 1u64 << i;
        }
        self
    }

    pub fn total(&self) -> u8 {
        self.k.saturating_add(self.n)
    }

    /// Well formed: 1 ≤ k, k+n ≤ 64, not empty, no bit at or above k+n.
    pub fn is_valid(&self) -> bool {
        let total = u32::from(self.k) + u32::from(self.n);
        if self.k == 0 || total > u32::from(MAX_FEED_SUBSTREAMS) || self.mask == 0 {
            return false;
        }
        total == 64 || self.mask >> total == 0
    }

    /// Whether the original block `seq` is pushed (its substream is in the set).
    pub fn contains_seq(&self, seq: u64) -> bool {
        self.k > 0 && self.mask & (1u64 << (seq % u64::from(self.k))) != 0
    }

    /// Recovery shards pushed, as j in `0..n`.
    pub fn recovery(&self) -> impl Iterator<Item = u8> + '_ {
        (0..self.n).filter(move |j| self.mask & (1u64 << (self.k + j)) != 0)
    }

    pub fn len(&self) -> u32 {
        self.mask.count_ones()
    }

    pub fn is_empty(&self) -> bool {
        self.mask == 0
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
    /// Some of the k+n erasure-coded substreams (D5's middle level).
    Coded(CodedSet),
}

impl Feed {
    /// Whether a block of this seq is pushed on the link.
    pub fn pushes(&self, seq: u64) -> bool {
        match self {
            Feed::All => true,
            Feed::Substreams(s) => s.contains_seq(seq),
            Feed::Lazy => false,
            Feed::Coded(c) => c.contains_seq(seq),
        }
    }

    /// Fraction of the stream pushed on the link (a recovery shard weighs as much
    /// as a block).
    pub fn share(&self) -> f64 {
        match self {
            Feed::All => 1.0,
            Feed::Substreams(s) => f64::from(s.len()) / f64::from(s.k.max(1)),
            Feed::Lazy => 0.0,
            Feed::Coded(c) => f64::from(c.len()) / f64::from(c.k.max(1)),
        }
    }

    pub fn is_valid(&self) -> bool {
        match self {
            Feed::Substreams(s) => s.is_valid(),
            Feed::Coded(c) => c.is_valid(),
            _ => true,
        }
    }

    /// The erasure layout (k, n) and recovery shards of a coded link.
    pub fn coded(&self) -> Option<&CodedSet> {
        match self {
            Feed::Coded(c) => Some(c),
            _ => None,
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

    #[test]
    fn coded_sets_split_originals_from_recovery() {
        let c = CodedSet::empty(4, 2).unwrap().with(1).with(5).with(9);
        assert_eq!(c.mask, 0b10_0010, "index 9 is beyond k+n = 6");
        assert!(c.contains_seq(5) && !c.contains_seq(6));
        assert_eq!(c.recovery().collect::<Vec<_>>(), vec![1]);
        assert!(Feed::Coded(c).is_valid());
        assert!((Feed::Coded(c).share() - 0.5).abs() < 1e-9);
        assert!(!Feed::Coded(CodedSet {
            k: 4,
            n: 2,
            mask: 1 << 6
        })
        .is_valid());
        assert!(!Feed::Coded(CodedSet {
            k: 0,
            n: 2,
            mask: 1
        })
        .is_valid());
        assert!(CodedSet::empty(60, 5).is_none());
        assert!(CodedSet {
            k: 60,
            n: 4,
            mask: u64::MAX
        }
        .is_valid());
    }
}
