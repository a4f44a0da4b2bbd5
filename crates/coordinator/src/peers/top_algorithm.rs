//! The top level's algorithm (D6, seed 003: "another example of a preferred
//! algorithm is a simple tree distribution algorithm, which might be used if all
//! nodes at this level are highly stable"). The top level floods on its
//! c-connected mesh (D3: the push tree plus lazy Have/Want links); once it has been
//! calm for `top_tree_after_ms` — no member joined, left, moved or was blamed — it
//! runs the push tree alone: the lazy links are dropped, so no announcements and
//! no repairs cross the top level. Any change of the top level (a rebuild of its
//! tree: a crash, a leave, a promotion, a member's parent reported bad) brings the
//! lazy links back at once. 0 (the default) keeps flooding always: the top level
//! is where robustness is bought.

use super::overlay::PeerOverlay;
use crate::config::PeerConfig;
use tiercast_proto::{NodeId, Timestamp};

impl PeerOverlay {
    /// At each review: stamps a disturbance seen since the last one, and switches
    /// the top level to a plain tree once it has been calm long enough.
    pub(crate) fn review_top_algorithm(&mut self, now: Timestamp, cfg: &PeerConfig) {
        let blamed_top = self
            .blamed
            .iter()
            .any(|id| self.members.get(id).is_some_and(|m| m.top));
        if std::mem::take(&mut self.top_disturbed) || blamed_top {
            self.top_calm_since = now;
        }
        let calm_us = cfg.top_tree_after_ms.saturating_mul(1000);
        let tree = cfg.top_tree_after_ms > 0
            && self.top_order.len() > 1
            && now.saturating_since(self.top_calm_since) >= calm_us;
        if tree && !self.top_tree {
            self.top_tree = true;
            self.stats.top_tree_switches += 1;
            let top: Vec<NodeId> = self.top_order.clone();
            for id in top {
                let m = self.members.get_mut(&id).expect("top member");
                if !m.lazy.is_empty() {
                    m.lazy.clear();
                    self.dirty.insert(id);
                }
            }
        }
    }

    /// The top level's tree is being rebuilt: it floods again (the rebuild gives
    /// every member its lazy links back) and the calm starts over.
    pub(crate) fn top_changed(&mut self) {
        self.top_disturbed = true;
        self.top_tree = false;
    }
}
