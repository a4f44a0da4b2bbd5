//! A member's values one per substream tree (D4: its parent, its depth memo and
//! its leaf children in each of the k trees), kept in the member itself for up
//! to [`INLINE`] trees and on the heap beyond (X7's memory per node, issue 12's
//! < 2 GB at 10⁶ nodes). Three boxed slices of k = 4 took 56 B in the member
//! and three allocations of 16–32 B with their headers (≈ 0.13 kB a member);
//! inline they take 104 B and no allocation. Reads and writes go through the
//! slice of its k values, as they went through the boxed slices.

use std::fmt;
use std::ops::{Deref, DerefMut};

/// Trees held inline (the default k is 4).
pub const INLINE: usize = 4;

#[derive(Clone)]
pub enum PerTree<T> {
    /// The first `len` of `items` are the values (the rest are filler).
    Inline {
        len: u8,
        items: [T; INLINE],
    },
    Heap(Box<[T]>),
}

impl<T: Clone> PerTree<T> {
    /// `k` values, each `v`.
    pub fn filled(k: usize, v: T) -> Self {
        if k <= INLINE {
            PerTree::Inline {
                // k ≤ INLINE: fits a u8.
                len: k as u8,
                items: std::array::from_fn(|_| v.clone()),
            }
        } else {
            PerTree::Heap(vec![v; k].into_boxed_slice())
        }
    }
}

impl<T> Deref for PerTree<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        match self {
            PerTree::Inline { len, items } => &items[..usize::from(*len)],
            PerTree::Heap(b) => b,
        }
    }
}

impl<T> DerefMut for PerTree<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        match self {
            PerTree::Inline { len, items } => &mut items[..usize::from(*len)],
            PerTree::Heap(b) => b,
        }
    }
}

impl<T: PartialEq> PartialEq for PerTree<T> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<T: Eq> Eq for PerTree<T> {}

impl<T: fmt::Debug> fmt::Debug for PerTree<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use tiercast_proto::NodeId;

    /// Any k: the values read and written as the boxed slice of k holds them;
    /// equality and clones see the k values only.
    #[test]
    fn holds_k_values_like_a_boxed_slice() {
        for k in 0..=9usize {
            let mut p = PerTree::filled(k, None::<NodeId>);
            let mut b = vec![None::<NodeId>; k].into_boxed_slice();
            assert_eq!(&*p, &*b);
            for t in 0..k {
                p[t] = Some(NodeId(t as u32 * 3));
                b[t] = Some(NodeId(t as u32 * 3));
                assert_eq!(&*p, &*b);
            }
            assert_eq!(p.len(), k);
            assert_eq!(p.get(k), None);
            let q = p.clone();
            assert_eq!(q, p);
            assert_eq!(format!("{q:?}"), format!("{b:?}"));
            p.iter_mut().for_each(|x| *x = None);
            assert_eq!(p == q, k == 0);
            assert_eq!(p, PerTree::filled(k, None));
            let memo = PerTree::filled(k, Cell::new(0u64));
            memo.iter().enumerate().for_each(|(t, c)| c.set(t as u64));
            assert_eq!(memo.iter().map(Cell::get).sum::<u64>(), (0..k as u64).sum());
        }
        // Filler past k does not count in equality.
        let a = PerTree::Inline {
            len: 2,
            items: [1u32, 2, 3, 4],
        };
        let b = PerTree::Inline {
            len: 2,
            items: [1u32, 2, 9, 9],
        };
        assert_eq!(a, b);
        assert!(matches!(PerTree::filled(4, 0u8), PerTree::Inline { .. }));
        assert!(matches!(PerTree::filled(5, 0u8), PerTree::Heap(_)));
    }
}
