//! The overlay's members at the time (C6, C7; issue 10's recomputation without
//! outage): a second on-time ledger (blocks mode) that counts a peer only while the
//! overlay carries it — from its first block after it was admitted until the
//! coordinator ejects it (C6), it leaves, or the run ends; back from its first
//! block after it is admitted again. The main ledger counts every viewer all the
//! time, so a second around a recomputation there also shows the peers that the
//! population's uplinks cannot carry (ejected, told to wait), whatever the
//! recomputation does; this one shows what the recomputation did to the peers it
//! had to carry. Both are in metrics.json, beside the ejections and their lower
//! bound. A block a member received that was due after its stretch ended is taken
//! back, as in the main ledger.

use crate::viewer::NONE;
use crate::world::Simulation;

impl Simulation {
    /// The index of viewer node `id` in `viewers`, if it is one.
    pub(crate) fn viewer_index(&self, id: u32) -> Option<usize> {
        id.checked_sub(self.first_viewer)
            .map(|i| i as usize)
            .filter(|i| *i < self.viewers.len())
    }

    /// Viewer `vi` stored block `seq`, on time (the main ledger has it).
    pub(crate) fn member_block(&mut self, vi: usize, region: u16, seq: u64) {
        let v = &mut self.viewers[vi];
        if v.out {
            return;
        }
        if v.member_from == NONE {
            v.member_from = seq;
        }
        if seq >= v.member_from {
            self.members_ledger.got(region, seq, 1.0);
        }
    }

    /// The coordinator ejected viewer `vi` now: its stretch as a member ends.
    pub(crate) fn member_ejected(&mut self, vi: usize) {
        self.playout_catch_up(vi, self.now);
        self.member_stretch_ends(vi, self.now);
        self.viewers[vi].out = true;
    }

    /// The coordinator admitted viewer `vi` (again): counted from its next block.
    pub(crate) fn member_admitted(&mut self, vi: usize) {
        self.playout_catch_up(vi, self.now);
        self.viewers[vi].out = false;
    }

    /// Viewer `vi` stops being counted as a member at `t` (ejected, left, the end):
    /// it was expected every seq from its stretch's first block to the last due by
    /// `t`; what it holds that was due later is taken back.
    pub(crate) fn member_stretch_ends(&mut self, vi: usize, t: u64) {
        let v = &self.viewers[vi];
        let from = v.member_from;
        if from == NONE || !self.members_ledger.blocks() {
            return;
        }
        let region = self.net.region_of(self.first_viewer + vi as u32);
        let s_end = self.last_seq_due(t);
        let due_after: Vec<u64> = self
            .on_time_above(vi, s_end)
            .into_iter()
            .filter(|s| *s >= from)
            .collect();
        self.members_ledger
            .close_range(region, from, s_end, due_after);
        self.viewers[vi].member_from = NONE;
    }

    /// On-time continuity of the members over the blocks cut in `[a, b)` (µs; the
    /// ledger settled).
    pub(crate) fn members_continuity_in(&self, a: u64, b: u64) -> Option<f64> {
        if b <= a {
            return None;
        }
        let (e, g) = self.members_ledger.sums(None, Some(self.slots_of(a, b)));
        (e > 0.0).then(|| g / e)
    }
}
