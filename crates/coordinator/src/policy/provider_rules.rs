//! From the policy store to the peer overlays (C3's provider rules → C6): the
//! `premium_first` rule of each channel, handed to its overlay at every tick and
//! right after a policy file is installed (`peers/premium.rs` applies it).
//! Audio fall-back and delayed feeds are applied to HTTP viewers by
//! `van/watch_feed.rs`; source preferences are not applied yet.

use crate::coordinator::Coordinator;

impl Coordinator {
    /// Every peer overlay takes its channel's `premium_first` rule.
    pub(crate) fn apply_provider_rules(&mut self) {
        for o in self.peers.values_mut() {
            let rule = self.policy.policies.premium_first(&o.desc.name);
            o.set_premium_first(rule);
        }
    }
}
