//! A top peer taken back after a coordinator restart is not told its mesh while
//! the top level is still coming back (D7, D3; issue 12). The top level's mesh is
//! a Harary mesh over the top members in a fixed order (`rebuild_top`), so over
//! the members back so far it is not the one the peers have; once every mesh
//! neighbour of the top peers taken back is back, the mesh is the old one again.
//! So a top peer whose push parent is the one it reported is told nothing while
//! a mesh neighbour reported by any top peer taken back is not a member yet; then
//! it is told only if its links differ from its report, or when its wait
//! ([`super::rejoin::ADOPT_WAIT_HEARTBEATS`] intervals from its first report,
//! [`super::report_wait`]) runs out. Without this, each of the 24 top peers of
//! `robust/restart-coordinator-peers` was told about ten `ParentSet`s in the
//! 2 s the top level took to come back (253 in all; the bottom peers none).

use super::overlay::PeerOverlay;
use super::rejoin::ADOPT_WAIT_HEARTBEATS;
use super::report_wait::ReportWait;
use super::restore::{sorted, Rejoins};
use tiercast_proto::{Feed, NodeId, Timestamp};

/// A top member taken back and not told yet, with what it reported.
#[derive(Clone, Debug)]
pub(crate) struct TopHeld {
    pub clock: ReportWait,
    pub links: Vec<(NodeId, Feed)>,
}

impl Rejoins {
    /// Top member `id` reports at `now`: whether it is held untold and its wait
    /// ran out ([`ReportWait::waited`], intervals of at least `interval_us`).
    pub(crate) fn top_held_report(&mut self, id: NodeId, now: Timestamp, interval_us: u64) -> bool {
        self.top_held.get_mut(&id).is_some_and(|h| {
            h.clock.report(now);
            h.clock.waited(now, ADOPT_WAIT_HEARTBEATS, interval_us)
        })
    }
}

impl PeerOverlay {
    /// Top member `id`, just taken back with `links` reported, is held untold
    /// (see the module docs); every top member held is looked at again.
    pub(crate) fn hold_top(&mut self, id: NodeId, clock: ReportWait, links: &[(NodeId, Feed)]) {
        self.rejoining.top_held.insert(
            id,
            TopHeld {
                clock,
                links: links.to_vec(),
            },
        );
        self.settle_top();
    }

    /// After a top member came back: each one held whose push parent is still
    /// the reported one stays untold while a reported neighbour is away; once
    /// all are back it is told only if its links differ from its report.
    pub(crate) fn settle_top(&mut self) {
        let held: Vec<NodeId> = self.rejoining.top_held.keys().copied().collect();
        // The mesh is the old one only once every neighbour of every member
        // held is back (one coming back later moves the others' links again).
        let all_back = self
            .rejoining
            .top_held
            .values()
            .all(|h| h.links.iter().all(|(p, _)| self.members.contains_key(p)));
        for id in held {
            let h = &self.rejoining.top_held[&id];
            let Some(m) = self.members.get(&id).filter(|m| m.top) else {
                self.rejoining.top_held.remove(&id);
                if self.members.contains_key(&id) {
                    self.dirty.insert(id);
                }
                continue;
            };
            let push = h
                .links
                .iter()
                .find(|(_, f)| *f == Feed::All)
                .map(|(p, _)| *p);
            if m.eager != push {
                self.rejoining.top_held.remove(&id);
                self.dirty.insert(id);
                continue;
            }
            if !all_back {
                self.dirty.remove(&id);
                continue;
            }
            let links = sorted(h.links.clone());
            self.rejoining.top_held.remove(&id);
            let told = self.assignment(id).unwrap_or_default();
            let now_links = sorted(told.into_iter().map(|f| (f.peer.id, f.feed)).collect());
            if now_links == links {
                self.dirty.remove(&id);
            } else {
                self.dirty.insert(id);
            }
        }
    }

    /// Top member `id` held untold is told what it has now (its wait ran out, or
    /// it is told something anyway). False when it was not held.
    pub(crate) fn end_top_hold(&mut self, id: NodeId) -> bool {
        if self.rejoining.top_held.remove(&id).is_none() {
            return false;
        }
        if self.members.contains_key(&id) {
            self.dirty.insert(id);
        }
        true
    }
}
