//! One node's claims on its uplink, by channel (C9, V8; issue 12's < 2 GB at
//! 10⁶ nodes): a vector kept sorted by channel id. Nearly every node holds one
//! share (one channel); an ordered map allocates a whole tree node (eleven
//! entries, ≈ 0.5 kB) for it, this a single entry. Walks go by ascending
//! channel id, as the ordered map's did.

use super::lending::Claim;
use tiercast_proto::ChannelId;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Claims {
    /// Sorted by channel, each channel once.
    v: Vec<(ChannelId, Claim)>,
}

impl Claims {
    fn at(&self, ch: &ChannelId) -> Result<usize, usize> {
        self.v.binary_search_by_key(ch, |(c, _)| *c)
    }

    pub fn get(&self, ch: &ChannelId) -> Option<&Claim> {
        let i = self.at(ch).ok()?;
        Some(&self.v[i].1)
    }

    pub fn get_mut(&mut self, ch: &ChannelId) -> Option<&mut Claim> {
        let i = self.at(ch).ok()?;
        Some(&mut self.v[i].1)
    }

    pub fn contains_key(&self, ch: &ChannelId) -> bool {
        self.at(ch).is_ok()
    }

    /// `ch`'s claim, put in as `new()` first if it has none.
    pub fn get_or_insert_with(&mut self, ch: ChannelId, new: impl FnOnce() -> Claim) -> &mut Claim {
        let i = match self.at(&ch) {
            Ok(i) => i,
            Err(i) => {
                // One more entry's room, not the four a first push reserves.
                self.v.reserve_exact(1);
                self.v.insert(i, (ch, new()));
                i
            }
        };
        &mut self.v[i].1
    }

    pub fn remove(&mut self, ch: &ChannelId) -> Option<Claim> {
        let i = self.at(ch).ok()?;
        let (_, c) = self.v.remove(i);
        self.v.shrink_to_fit();
        Some(c)
    }

    pub fn len(&self) -> usize {
        self.v.len()
    }

    pub fn is_empty(&self) -> bool {
        self.v.is_empty()
    }

    /// By ascending channel id.
    pub fn iter(&self) -> impl Iterator<Item = (&ChannelId, &Claim)> + '_ {
        self.v.iter().map(|(c, h)| (c, h))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&ChannelId, &mut Claim)> + '_ {
        self.v.iter_mut().map(|(c, h)| (&*c, h))
    }

    pub fn values(&self) -> impl Iterator<Item = &Claim> + '_ {
        self.v.iter().map(|(_, h)| h)
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Claim> + '_ {
        self.v.iter_mut().map(|(_, h)| h)
    }
}

impl std::ops::Index<&ChannelId> for Claims {
    type Output = Claim;

    fn index(&self, ch: &ChannelId) -> &Claim {
        self.get(ch).expect("a claim of this channel")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn claim(w: u64) -> Claim {
        Claim {
            weight: w,
            base_bps: w * 3,
            need_bps: None,
            effective_bps: w * 2,
        }
    }

    /// Scrambled inserts, updates and removals: the same contents, in the same
    /// order, as an ordered map given the same operations.
    #[test]
    fn claims_follow_the_ordered_map() {
        let mut a = Claims::default();
        let mut b: BTreeMap<ChannelId, Claim> = BTreeMap::new();
        for k in 0..2000u32 {
            let ch = ChannelId(k.wrapping_mul(2_654_435_761) % 37);
            match k % 4 {
                0 | 1 => {
                    a.get_or_insert_with(ch, || claim(u64::from(k))).weight += 1;
                    b.entry(ch).or_insert(claim(u64::from(k))).weight += 1;
                }
                2 => assert_eq!(a.remove(&ch), b.remove(&ch)),
                _ => {
                    if let Some(c) = a.get_mut(&ch) {
                        c.base_bps += 5;
                    }
                    if let Some(c) = b.get_mut(&ch) {
                        c.base_bps += 5;
                    }
                }
            }
            assert_eq!(a.len(), b.len());
            assert_eq!(a.is_empty(), b.is_empty());
            assert_eq!(a.contains_key(&ch), b.contains_key(&ch));
            assert_eq!(a.get(&ch), b.get(&ch));
        }
        a.values_mut().for_each(|c| c.effective_bps += 1);
        b.values_mut().for_each(|c| c.effective_bps += 1);
        for ((_, c), (_, d)) in a.iter_mut().zip(b.iter_mut()) {
            c.need_bps = Some(c.weight);
            d.need_bps = Some(d.weight);
        }
        assert!(a.iter().eq(b.iter()));
        assert!(a.values().eq(b.values()));
        let first = *b.keys().next().expect("some left");
        assert_eq!(a[&first], b[&first]);
    }
}
