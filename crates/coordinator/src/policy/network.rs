//! Network policies (C3) as pure questions for the parent selection (C4): the cap
//! on a link between two regions or two nodes (and its declared fall-back), the
//! source preferred by traffic used so far in a period, and peering links.

use super::file::{LinkCap, Period, Source, ViewerClass};
use super::rules::{names_contain, strictest, Policies};

/// A cap in force on a link, and the rule that set it.
#[derive(Clone, Debug, PartialEq)]
pub struct Cap<'a> {
    pub rule: &'a str,
    pub mbps: f64,
}

impl Policies {
    /// The cap on links between regions `a` and `b` (either order) for viewers of
    /// `class`: the strictest active rule's.
    pub fn region_link_cap(&self, a: &str, b: &str, class: ViewerClass) -> Option<Cap<'_>> {
        self.cap_where(class, |r| {
            r.regions.as_ref().is_some_and(|p| {
                let p = p.get_ref();
                a != b && names_contain(p, a) && names_contain(p, b)
            })
        })
    }

    /// The cap on the link between nodes `a` and `b` (either order).
    pub fn node_link_cap(&self, a: u32, b: u32, class: ViewerClass) -> Option<Cap<'_>> {
        self.cap_where(class, |r| {
            r.nodes.as_ref().is_some_and(|n| {
                let n = n.get_ref();
                n.contains(&a) && n.contains(&b) && a != b
            })
        })
    }

    /// When `cap` would leave a viewer of `class` with no parent: the cap declared
    /// as its fall-back (`None`: no fall-back, the cap stands).
    pub fn cap_fallback(&self, cap: &Cap<'_>, class: ViewerClass) -> Option<Cap<'_>> {
        let name = self.fallback_of(cap.rule)?;
        let r = self
            .file
            .network
            .link_cap
            .iter()
            .find(|r| r.name.get_ref() == name)?;
        r.viewers.covers(class).then(|| Cap {
            rule: r.name.get_ref(),
            mbps: *r.cap_mbps.get_ref(),
        })
    }

    fn cap_where(&self, class: ViewerClass, on_link: impl Fn(&LinkCap) -> bool) -> Option<Cap<'_>> {
        let r = strictest(
            self,
            self.file
                .network
                .link_cap
                .iter()
                .filter(|r| r.viewers.covers(class) && on_link(r)),
            |r| &r.name,
            |r| &r.strictness,
        )?;
        Some(Cap {
            rule: r.name.get_ref(),
            mbps: *r.cap_mbps.get_ref(),
        })
    }

    /// The source a traffic budget prefers, given the GB used so far in each
    /// period (e.g. month-to-date): `below` under the threshold, `above` from it.
    pub fn traffic_preference(&self, used_gb: impl Fn(Period) -> f64) -> Option<Source> {
        let r = strictest(
            self,
            self.file.network.traffic_budget.iter(),
            |r| &r.name,
            |r| &r.strictness,
        )?;
        Some(if used_gb(r.period) < *r.threshold_gb.get_ref() {
            r.below
        } else {
            r.above
        })
    }

    /// Whether a link between regions `a` and `b` is a peering link to prefer.
    pub fn is_peering(&self, a: &str, b: &str) -> bool {
        self.file
            .network
            .prefer_peering
            .iter()
            .filter(|r| !self.is_dormant(r.name.get_ref()))
            .flat_map(|r| r.pairs.iter())
            .any(|p| {
                let p = p.get_ref();
                names_contain(p, a) && names_contain(p, b) && a != b
            })
    }
}
