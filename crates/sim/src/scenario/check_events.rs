//! Checks of a scenario's arrivals and faults (X5; V10, V11), part of
//! [`Scenario::validate`]: every error names the field.

use super::validate::{bad, dist, placement, time, ScenarioError};
use super::{Arrival, Fault, Scenario};
use tiercast_netmodel::Regions;

impl Scenario {
    pub(super) fn validate_arrival(
        &self,
        f: &str,
        a: &Arrival,
        regions: &Regions,
    ) -> Result<(), ScenarioError> {
        let dur = self.duration_s;
        match a {
            Arrival::FlashCrowd {
                count,
                start_s,
                over_s,
                region,
                region_weights,
                session_s,
                both_channels,
                uplink_kbps,
                ..
            } => {
                if *count == 0 || *count > 2_000_000 {
                    return Err(bad(format!("{f}.count"), "must be 1..=2000000"));
                }
                time(format!("{f}.start_s"), *start_s, dur)?;
                time(format!("{f}.over_s"), *over_s, dur)?;
                placement(f, region, region_weights, regions)?;
                if let Some(d) = session_s {
                    dist(format!("{f}.session_s"), d)?;
                }
                if let Some(d) = uplink_kbps {
                    dist(format!("{f}.uplink_kbps"), d)?;
                }
                if *both_channels && self.second_stream.is_none() {
                    return Err(bad(format!("{f}.both_channels"), "needs a [second_stream]"));
                }
            }
            Arrival::Churn {
                rate_per_s,
                population,
                ramp_s,
                session_s,
                start_s,
                until_s,
                region,
                region_weights,
            } => {
                match (rate_per_s, population) {
                    (Some(r), None) if r.is_finite() && *r > 0.0 && *r <= 1e6 => {}
                    (None, Some(p)) if *p > 0 && *p <= 2_000_000 => {}
                    (Some(_), None) => {
                        return Err(bad(format!("{f}.rate_per_s"), "must be > 0 and <= 1e6"))
                    }
                    (None, Some(_)) => {
                        return Err(bad(format!("{f}.population"), "must be 1..=2000000"))
                    }
                    _ => {
                        return Err(bad(
                            f.to_string(),
                            "give exactly one of rate_per_s and population",
                        ))
                    }
                }
                time(format!("{f}.ramp_s"), *ramp_s, dur)?;
                time(format!("{f}.start_s"), *start_s, dur)?;
                if let Some(u) = until_s {
                    if !(u.is_finite() && *u > *start_s) {
                        return Err(bad(format!("{f}.until_s"), "must be after start_s"));
                    }
                }
                dist(format!("{f}.session_s"), session_s)?;
                if session_s.mean() <= 0.0 {
                    return Err(bad(format!("{f}.session_s"), "mean must be > 0"));
                }
                placement(f, region, region_weights, regions)?;
            }
            Arrival::LeaveWave {
                fraction,
                labels,
                at_s,
                over_s,
            } => {
                match (fraction, labels) {
                    (Some(x), None) if *x > 0.0 && *x <= 1.0 => {}
                    (None, Some(l)) if !l.is_empty() => {}
                    (Some(_), None) => {
                        return Err(bad(format!("{f}.fraction"), "must be in (0, 1]"))
                    }
                    (None, Some(_)) => return Err(bad(format!("{f}.labels"), "must not be empty")),
                    _ => {
                        return Err(bad(
                            f.to_string(),
                            "give exactly one of fraction and labels",
                        ))
                    }
                }
                time(format!("{f}.at_s"), *at_s, dur)?;
                time(format!("{f}.over_s"), *over_s, dur)?;
            }
        }
        Ok(())
    }

    pub(super) fn validate_fault(
        &self,
        f: &str,
        x: &Fault,
        regions: &Regions,
    ) -> Result<(), ScenarioError> {
        time(format!("{f}.at_s"), x.at_s(), self.duration_s)?;
        let labels = self.class_labels();
        let known = |n: &str| labels.iter().any(|l| l == n) || self.class(n).is_some();
        if let Some(t) = x.target() {
            let by_list = t.nodes.is_some();
            let by_group = t.class.is_some() || t.tier.is_some() || t.top_peers;
            if by_list == by_group {
                return Err(bad(
                    f.to_string(),
                    "give either nodes = [labels] or a class / tier / top_peers with fraction or count",
                ));
            }
            if t.top_peers && (!self.peers_mode() || t.class.is_some() || t.tier.is_some()) {
                return Err(bad(
                    format!("{f}.top_peers"),
                    "needs viewers.role = \"peer\" and no class or tier",
                ));
            }
            for n in t.nodes.iter().flatten() {
                if !labels.iter().any(|l| l == n) {
                    return Err(bad(format!("{f}.nodes"), format!("no node labelled {n:?}")));
                }
            }
            if let Some(c) = &t.class {
                if self.class(c).is_none() {
                    return Err(bad(format!("{f}.class"), format!("no class {c:?}")));
                }
            }
            if by_group {
                match (t.fraction, t.count) {
                    (Some(x), None) if x > 0.0 && x <= 1.0 => {}
                    (None, Some(n)) if n > 0 => {}
                    _ => {
                        return Err(bad(
                            f.to_string(),
                            "give exactly one of fraction (0, 1] and count (>= 1)",
                        ))
                    }
                }
            }
        }
        match x {
            Fault::LinkCut { a, b, until_s, .. } => {
                for (name, v) in [("a", a), ("b", b)] {
                    if !known(v) {
                        return Err(bad(
                            format!("{f}.{name}"),
                            format!("{v:?} is neither a node label nor a class"),
                        ));
                    }
                }
                self.until(f, x.at_s(), *until_s)?;
            }
            Fault::Tamper { until_s, .. } => self.until(f, x.at_s(), *until_s)?,
            Fault::Partition {
                regions: rs,
                until_s,
                ..
            } => {
                if rs.is_empty() || rs.len() >= regions.len() {
                    return Err(bad(
                        format!("{f}.regions"),
                        "name at least one region and not all of them",
                    ));
                }
                for r in rs {
                    if regions.id(r).is_none() {
                        return Err(bad(format!("{f}.regions"), format!("unknown region {r:?}")));
                    }
                }
                self.until(f, x.at_s(), *until_s)?;
            }
            Fault::Flaky {
                fraction,
                count,
                every_s,
                down_s,
                until_s,
                ..
            } => {
                if !self.peers_mode() {
                    return Err(bad(f.to_string(), "flaky needs viewers.role = \"peer\""));
                }
                match (fraction, count) {
                    (Some(x), None) if *x > 0.0 && *x <= 1.0 => {}
                    (None, Some(n)) if *n > 0 => {}
                    _ => {
                        return Err(bad(
                            f.to_string(),
                            "give exactly one of fraction (0, 1] and count (>= 1)",
                        ))
                    }
                }
                if !(every_s.is_finite() && *every_s > 0.0) {
                    return Err(bad(format!("{f}.every_s"), "must be > 0"));
                }
                if !(down_s.is_finite() && *down_s > 0.0 && down_s < every_s) {
                    return Err(bad(
                        format!("{f}.down_s"),
                        "must be > 0 and shorter than every_s",
                    ));
                }
                self.until(f, x.at_s(), *until_s)?;
            }
            Fault::Restart { down_s, .. } | Fault::CoordinatorRestart { down_s, .. }
                if !(down_s.is_finite()
                    && *down_s >= 0.0
                    && x.at_s() + down_s < self.duration_s) =>
            {
                return Err(bad(
                    format!("{f}.down_s"),
                    "must be >= 0 and end before duration_s",
                ));
            }
            _ => {}
        }
        Ok(())
    }

    fn until(&self, f: &str, at: f64, until: Option<f64>) -> Result<(), ScenarioError> {
        match until {
            Some(u) if !(u.is_finite() && u > at) => {
                Err(bad(format!("{f}.until_s"), "must be after at_s"))
            }
            _ => Ok(()),
        }
    }
}
