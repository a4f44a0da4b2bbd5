//! Client policies (C3) as pure questions for the parent selection (C4): whether
//! a node may relay now, whether a device class may watch a channel (its content
//! categories), and affinity groups (nodes that should, or must not, feed each
//! other).

use super::file::{AffinityMode, DeviceDeny, NoRelayHours};
use super::rules::{applies, names_contain, Policies, Refusal};

impl Policies {
    /// Whether a node of `device_class` may feed others at `utc_hour` (0..=23).
    pub fn relay_allowed(&self, device_class: &str, utc_hour: u8) -> bool {
        let c = &self.file.client;
        let denied = c.device_class.iter().any(|r| {
            !self.is_dormant(r.name.get_ref())
                && r.deny == DeviceDeny::Relay
                && names_contain(&r.classes, device_class)
        });
        let quiet = c.no_relay_hours.iter().any(|r| {
            !self.is_dormant(r.name.get_ref())
                && applies(&r.device_classes, device_class)
                && in_hours(r, utc_hour)
        });
        !denied && !quiet
    }

    /// `Some` when a viewer on `device_class` in `region` may not watch `channel`:
    /// its device class may not watch, or a category of the channel is refused to it.
    pub fn watch_refused(
        &self,
        channel: &str,
        device_class: &str,
        region: &str,
    ) -> Option<Refusal> {
        let c = &self.file.client;
        let mut refusals = c
            .device_class
            .iter()
            .filter(|r| r.deny == DeviceDeny::Watch && names_contain(&r.classes, device_class))
            .map(|r| {
                (
                    &r.name,
                    &r.strictness,
                    format!("{device_class} devices may not watch"),
                )
            })
            .chain(c.content_category.iter().filter_map(|r| {
                let cats = self.categories_of(channel);
                let hit = r
                    .categories
                    .iter()
                    .find(|k| cats.contains(&k.get_ref().as_str()))?;
                let refused = names_contain(&r.device_classes, device_class)
                    || names_contain(&r.regions, region);
                refused.then(|| {
                    let why = format!("{} content is not allowed here", hit.get_ref());
                    (&r.name, &r.strictness, why)
                })
            }))
            .filter(|(n, _, _)| !self.is_dormant(n.get_ref()))
            .collect::<Vec<_>>();
        // Strictest first, ties in file order.
        refusals.sort_by_key(|(_, s, _)| std::cmp::Reverse(*s.get_ref()));
        refusals.into_iter().next().map(|(n, _, reason)| Refusal {
            rule: n.get_ref().clone(),
            reason,
        })
    }

    /// The affinity between nodes `a` and `b`: `MustNot` wins over `Should`.
    pub fn affinity(&self, a: u32, b: u32) -> Option<AffinityMode> {
        let mut found = None;
        for r in &self.file.client.affinity {
            let m = r.members.get_ref();
            if a == b || self.is_dormant(r.name.get_ref()) || !(m.contains(&a) && m.contains(&b)) {
                continue;
            }
            if r.mode == AffinityMode::MustNot {
                return Some(AffinityMode::MustNot);
            }
            found = Some(r.mode);
        }
        found
    }
}

/// Whether `utc_hour` falls in the rule's local `[start, end)`, wrapping past midnight.
fn in_hours(r: &NoRelayHours, utc_hour: u8) -> bool {
    let h = r.hours.get_ref();
    let (Some(&start), Some(&end)) = (h.first(), h.get(1)) else {
        return false;
    };
    let offset = r.utc_offset_h.as_ref().map_or(0, |o| *o.get_ref());
    let local = (i64::from(utc_hour) + offset).rem_euclid(24);
    if start < end {
        (start..end).contains(&local)
    } else {
        local >= start || local < end
    }
}
