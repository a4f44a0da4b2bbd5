//! The decoding window of the middle level (D5): the groups a node with coded
//! parents can still rebuild (the [`DECODE_WINDOW_GROUPS`] behind the highest
//! group seen), and the loss measure the coordinator sizes the cluster's n from —
//! when a group falls out of the window, the indices its coded parents push
//! (originals `i < k`, recovery `k + j`) are added to what was expected, and those
//! that arrived pushed from a parent to what was received.

use crate::strategy::erasure::{DecodeProgress, ErasureDecoder, ErasureError, ErasureParams};
use bytes::Bytes;
use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use tiercast_proto::NodeId;

/// Groups kept open behind the highest group seen.
pub const DECODE_WINDOW_GROUPS: u64 = 16;

/// One group inside the window.
#[derive(Debug, Default)]
struct Group {
    /// Created at the first shard; dropped once the group is whole or broken.
    decoder: Option<ErasureDecoder>,
    /// Whole (nothing more to rebuild) or given up after a bad shard.
    done: bool,
    /// Indices handed to the decoder (bit per index): a second copy is a duplicate.
    seen: u64,
    /// Indices that arrived pushed from a coded parent (bit per index).
    pushed: u64,
}

/// What became of a shard offered to its group.
#[derive(Debug, PartialEq)]
pub enum Offer {
    /// Kept (or not needed any more); nothing rebuilt.
    Taken,
    /// The group just became whole; these originals (index, coded body) were missing.
    Restored(Vec<(usize, Bytes)>),
    /// The group has already left the window.
    Late,
    /// Refused: a duplicate, a shard of the wrong size, or a group that cannot be
    /// rebuilt (a corrupt shard was held).
    Bad(ErasureError),
}

/// Loss counted when groups leave the window: (expected, received).
pub type Loss = (u64, u64);

/// Decoders and loss bookkeeping for one `k+n` layout of one channel.
#[derive(Debug)]
pub struct Window {
    params: ErasureParams,
    groups: BTreeMap<u64, Group>,
    highest: Option<u64>,
    /// Coded parents and the first group their indices are counted for: a link is
    /// measured from its first recovery shard (or, for a link of originals only,
    /// from the group after its first block), so the backlog a parent sends at
    /// login, which has no recovery shards, never counts as loss.
    counted_from: BTreeMap<NodeId, u64>,
}

fn bit(index: usize) -> u64 {
    1u64.checked_shl(index as u32).unwrap_or(0)
}

impl Window {
    pub fn new(params: ErasureParams) -> Self {
        Window {
            params,
            groups: BTreeMap::new(),
            highest: None,
            counted_from: BTreeMap::new(),
        }
    }

    pub fn params(&self) -> ErasureParams {
        self.params
    }

    /// Groups currently open (for tests and bounds).
    pub fn open_groups(&self) -> usize {
        self.groups.len()
    }

    /// Forgets coded parents that are gone.
    pub fn retain_parents(&mut self, keep: impl Fn(NodeId) -> bool) {
        self.counted_from.retain(|id, _| keep(*id));
    }

    /// Whether `group` moves the window forward (the first group, or a newer one).
    pub fn moves_to(&self, group: u64) -> bool {
        self.highest.is_none_or(|h| group > h)
    }

    /// Moves the window up to `group`, closing the groups that fall out of it.
    /// `coded` lists the coded parents of this layout with their masks.
    pub fn advance(&mut self, group: u64, coded: &[(NodeId, u64)]) -> Loss {
        let Some(h) = self.highest else {
            self.highest = Some(group);
            return (0, 0);
        };
        if group <= h {
            return (0, 0);
        }
        // Groups skipped by a short jump were lost whole: they count too.
        if group - h <= DECODE_WINDOW_GROUPS {
            for g in h + 1..group {
                self.groups.entry(g).or_default();
            }
        }
        self.highest = Some(group);
        let floor = group.saturating_sub(DECODE_WINDOW_GROUPS);
        let mut loss = (0, 0);
        while let Some(entry) = self.groups.first_entry() {
            if *entry.key() >= floor {
                break;
            }
            let g = *entry.key();
            let closed = entry.remove();
            let expected = coded
                .iter()
                .filter(|(id, _)| self.counted_from.get(id).is_some_and(|f| *f <= g))
                .fold(0u64, |m, (_, mask)| m | mask);
            loss.0 += u64::from(expected.count_ones());
            loss.1 += u64::from((closed.pushed & expected).count_ones());
        }
        loss
    }

    fn in_window(&self, group: u64) -> bool {
        self.highest
            .is_some_and(|h| group.saturating_add(DECODE_WINDOW_GROUPS) >= h)
    }

    /// Index `index` of `group` arrived pushed from coded parent `from`
    /// (`has_recovery`: the parent's mask holds recovery shards). Call after
    /// [`Window::advance`].
    pub fn note_pushed(&mut self, from: NodeId, has_recovery: bool, group: u64, index: usize) {
        let k = self.params.originals();
        let first = match (has_recovery, index >= k) {
            (true, true) => Some(group),
            (true, false) => None,
            (false, _) => Some(group.saturating_add(1)),
        };
        if let (Some(first), Entry::Vacant(e)) = (first, self.counted_from.entry(from)) {
            e.insert(first);
        }
        if self.in_window(group) {
            self.groups.entry(group).or_default().pushed |= bit(index);
        }
    }

    /// Offers shard `index` of `group` (an original's coded body or a recovery
    /// shard) to the group's decoder. Call after [`Window::advance`].
    pub fn offer(&mut self, group: u64, index: usize, data: Bytes) -> Offer {
        if !self.in_window(group) {
            return Offer::Late;
        }
        let params = self.params;
        let g = self.groups.entry(group).or_default();
        if g.seen & bit(index) != 0 {
            return Offer::Bad(ErasureError::DuplicateShard { group, index });
        }
        if g.done {
            g.seen |= bit(index);
            return Offer::Taken;
        }
        let decoder = g
            .decoder
            .get_or_insert_with(|| ErasureDecoder::new(params, group));
        match decoder.insert(index, data) {
            Ok(DecodeProgress::Pending { .. }) => {
                g.seen |= bit(index);
                Offer::Taken
            }
            Ok(DecodeProgress::AlreadyComplete) => {
                g.seen |= bit(index);
                g.done = true;
                g.decoder = None;
                Offer::Taken
            }
            Ok(DecodeProgress::Complete { restored }) => {
                g.seen |= bit(index);
                g.done = true;
                g.decoder = None;
                if restored.is_empty() {
                    Offer::Taken
                } else {
                    Offer::Restored(restored)
                }
            }
            Err(e @ (ErasureError::Corrupt { .. } | ErasureError::Codec(_))) => {
                // A held shard was bad: this group cannot be rebuilt here.
                g.done = true;
                g.decoder = None;
                Offer::Bad(e)
            }
            Err(e) => Offer::Bad(e),
        }
    }
}
