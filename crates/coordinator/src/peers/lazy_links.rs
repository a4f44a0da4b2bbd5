//! A member's lazy links (D2, D4: a top member's mesh neighbours, a bottom
//! member's one repair link), kept without an allocation when there is at most
//! one (X7's memory per node, issue 12's < 2 GB at 10⁶ nodes): nearly every
//! member is a bottom peer with none or one, which a `Vec` held in 24 B plus an
//! allocation of four ids (≈ 56 B a member); here 16 B. Read as the slice of
//! its ids, in the order they were given.

use std::fmt;
use std::ops::Deref;
use tiercast_proto::NodeId;

#[derive(Clone, Default)]
pub enum LazyLinks {
    #[default]
    None,
    One(NodeId),
    Many(Box<[NodeId]>),
}

impl LazyLinks {
    pub fn clear(&mut self) {
        *self = LazyLinks::None;
    }
}

impl Deref for LazyLinks {
    type Target = [NodeId];

    fn deref(&self) -> &[NodeId] {
        match self {
            LazyLinks::None => &[],
            LazyLinks::One(id) => std::slice::from_ref(id),
            LazyLinks::Many(ids) => ids,
        }
    }
}

impl From<Vec<NodeId>> for LazyLinks {
    fn from(v: Vec<NodeId>) -> Self {
        match v.as_slice() {
            [] => LazyLinks::None,
            [id] => LazyLinks::One(*id),
            _ => LazyLinks::Many(v.into_boxed_slice()),
        }
    }
}

impl<'a> IntoIterator for &'a LazyLinks {
    type Item = &'a NodeId;
    type IntoIter = std::slice::Iter<'a, NodeId>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl PartialEq for LazyLinks {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for LazyLinks {}

impl PartialEq<Vec<NodeId>> for LazyLinks {
    fn eq(&self, other: &Vec<NodeId>) -> bool {
        **self == **other
    }
}

impl<const N: usize> PartialEq<[NodeId; N]> for LazyLinks {
    fn eq(&self, other: &[NodeId; N]) -> bool {
        **self == other[..]
    }
}

impl fmt::Debug for LazyLinks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Any list: read back as the vector it was made from, compared as it.
    #[test]
    fn reads_back_the_vector_it_was_made_from() {
        for n in 0..6u32 {
            let v: Vec<NodeId> = (0..n).map(|i| NodeId(10 + i * 7)).collect();
            let l = LazyLinks::from(v.clone());
            assert_eq!(&*l, v.as_slice());
            assert!(l == v);
            assert_eq!(l.len(), v.len());
            assert_eq!(l.first(), v.first());
            assert_eq!(
                (&l).into_iter().collect::<Vec<_>>(),
                v.iter().collect::<Vec<_>>()
            );
            assert_eq!(l.clone(), l);
            assert_eq!(format!("{l:?}"), format!("{v:?}"));
            assert_eq!(l == [NodeId(10)], n == 1);
            let mut c = l.clone();
            c.clear();
            assert!(c.is_empty() && c == Vec::new());
            assert_eq!(c == l, n == 0);
        }
        assert!(matches!(
            LazyLinks::from(vec![NodeId(1)]),
            LazyLinks::One(_)
        ));
        assert!(matches!(LazyLinks::from(Vec::new()), LazyLinks::None));
        assert!(LazyLinks::default().is_empty());
    }
}
