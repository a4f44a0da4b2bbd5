//! Checking a policy file (C3; issue 11 "must show 7"): a file that does not parse,
//! has an unknown key or a value of the wrong type, or breaks a rule below is
//! refused with the line and the reason; nothing of it is kept. Regions and
//! channels are checked against the known ones when those lists are given.
//!
//! Rules checked: names unique and non-empty; strictness 1..=10; a fall-back names
//! another rule of the same kind and fall-backs form no cycle; a link cap names two
//! distinct regions or two distinct nodes and is a positive number of Mbit/s; a
//! traffic budget's threshold is positive and its two preferences differ; peering
//! pairs are two distinct regions; a delay is 1..=3600 s; hours are
//! `[start, end]` with start in 0..=23, end in 0..=24 and start ≠ end, the UTC
//! offset in -12..=14; a content rule names defined categories and refuses
//! something; an affinity group has at least two distinct members.

use super::file::{Name, PolicyFile};
use super::rules::Policies;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use toml::Spanned;

/// A refused policy file: where and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct PolicyError {
    /// 1-based line in the file.
    pub line: usize,
    pub reason: String,
}

/// The regions and channels a policy may name (`None`: not checked).
#[derive(Clone, Debug, Default)]
pub struct Known {
    pub regions: Option<BTreeSet<String>>,
    pub channels: Option<BTreeSet<String>>,
}

/// Parses and checks a policy file.
pub fn check(src: &str, known: &Known) -> Result<Policies, PolicyError> {
    let file: PolicyFile = toml::from_str(src).map_err(|e| PolicyError {
        line: e.span().map_or(1, |s| line_of(src, s.start)),
        reason: e.message().trim().replace('\n', "; "),
    })?;
    Checker { src, known }.file(&file)?;
    Ok(Policies::new(file))
}

/// 1-based line of a byte offset.
fn line_of(src: &str, offset: usize) -> usize {
    let end = offset.min(src.len());
    src.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

struct Checker<'a> {
    src: &'a str,
    known: &'a Known,
}

type Checked = Result<(), PolicyError>;

impl Checker<'_> {
    fn fail(&self, span: Range<usize>, reason: impl Into<String>) -> Checked {
        Err(PolicyError {
            line: line_of(self.src, span.start),
            reason: reason.into(),
        })
    }

    fn file(&self, f: &PolicyFile) -> Checked {
        self.common(f)?;
        for (cat, chans) in &f.categories {
            if cat.is_empty() {
                return self.fail(chans.first().map_or(0..0, |c| c.span()), "empty category");
            }
            self.channels(chans)?;
        }
        for r in &f.network.link_cap {
            match (&r.regions, &r.nodes) {
                (Some(regions), None) => self.pair(regions, "a link cap")?,
                (None, Some(nodes)) => {
                    let n = nodes.get_ref();
                    if n.len() != 2 || n[0] == n[1] {
                        return self.fail(nodes.span(), "a link cap names two distinct nodes");
                    }
                }
                _ => {
                    return self.fail(
                        r.name.span(),
                        "a link cap names either `regions` or `nodes`",
                    )
                }
            }
            self.positive(&r.cap_mbps, "cap_mbps")?;
        }
        for r in &f.network.traffic_budget {
            self.positive(&r.threshold_gb, "threshold_gb")?;
            if r.below == r.above {
                return self.fail(r.name.span(), "`below` and `above` prefer the same source");
            }
        }
        for r in &f.network.prefer_peering {
            if r.pairs.is_empty() {
                return self.fail(r.name.span(), "no peering pairs");
            }
            for p in &r.pairs {
                self.pair(p, "a peering pair")?;
            }
        }
        for r in &f.provider.premium_first {
            self.channels(&r.channels)?;
        }
        for r in &f.provider.audio_fallback {
            self.channels(&r.channels)?;
        }
        for r in &f.provider.geo_block {
            if r.regions.is_empty() {
                return self.fail(r.name.span(), "a geo block names at least one region");
            }
            self.regions(&r.regions)?;
            self.channels(&r.channels)?;
        }
        for r in &f.provider.delayed_feed {
            self.channels(&r.channels)?;
            self.within(&r.delay_s, 1, 3600, "delay_s")?;
        }
        for r in &f.provider.prefer_source {
            self.channels(&r.channels)?;
        }
        self.client(f)
    }

    fn client(&self, f: &PolicyFile) -> Checked {
        for r in &f.client.no_relay_hours {
            let h = r.hours.get_ref();
            let ok = h.len() == 2 && (0..=23).contains(&h[0]) && (0..=24).contains(&h[1]);
            if !ok || h[0] == h[1] {
                return self.fail(
                    r.hours.span(),
                    "bad hour range: `hours = [start, end]`, start 0..=23, end 0..=24, start != end",
                );
            }
            if let Some(off) = &r.utc_offset_h {
                self.within(off, -12, 14, "utc_offset_h")?;
            }
            self.device_classes(&r.device_classes)?;
        }
        for r in &f.client.device_class {
            if r.classes.is_empty() {
                return self.fail(r.name.span(), "no device classes");
            }
            self.device_classes(&r.classes)?;
        }
        for r in &f.client.content_category {
            if r.categories.is_empty() {
                return self.fail(r.name.span(), "no categories");
            }
            for c in &r.categories {
                if !f.categories.contains_key(c.get_ref()) {
                    return self.fail(
                        c.span(),
                        format!("unknown category `{}` (not in [categories])", c.get_ref()),
                    );
                }
            }
            if r.device_classes.is_empty() && r.regions.is_empty() {
                return self.fail(
                    r.name.span(),
                    "a content rule refuses some `device_classes` or `regions`",
                );
            }
            self.regions(&r.regions)?;
            self.device_classes(&r.device_classes)?;
        }
        for r in &f.client.affinity {
            let m = r.members.get_ref();
            let distinct: BTreeSet<u32> = m.iter().copied().collect();
            if m.len() < 2 || distinct.len() != m.len() {
                return self.fail(
                    r.members.span(),
                    "an affinity group has at least two distinct members",
                );
            }
        }
        Ok(())
    }

    /// Names, strictness and fall-backs, over every rule.
    fn common(&self, f: &PolicyFile) -> Checked {
        let rules = f.rules();
        let mut kinds: BTreeMap<&str, &str> = BTreeMap::new();
        for r in &rules {
            let name = r.name.get_ref();
            if name.trim().is_empty() {
                return self.fail(r.name.span(), "empty rule name");
            }
            if kinds.insert(name, r.kind).is_some() {
                return self.fail(r.name.span(), format!("rule `{name}` defined twice"));
            }
            self.within(r.strictness, 1, 10, "strictness")?;
        }
        let mut next: BTreeMap<&str, &str> = BTreeMap::new();
        for r in &rules {
            let Some(fb) = r.fallback else { continue };
            let target = fb.get_ref().as_str();
            match kinds.get(target) {
                None => return self.fail(fb.span(), format!("fallback `{target}`: no such rule")),
                Some(_) if target == r.name.get_ref() => {
                    return self.fail(fb.span(), "a rule cannot fall back on itself")
                }
                Some(k) if *k != r.kind => {
                    return self.fail(
                        fb.span(),
                        format!("fallback `{target}` is a {k} rule, not a {}", r.kind),
                    )
                }
                Some(_) => {}
            }
            next.insert(r.name.get_ref(), target);
        }
        for r in &rules {
            let mut at = r.name.get_ref().as_str();
            for _ in 0..=next.len() {
                match next.get(at) {
                    Some(n) if *n == r.name.get_ref() => {
                        let span = r.fallback.map_or(r.name.span(), |f| f.span());
                        return self.fail(span, "fallbacks form a cycle");
                    }
                    Some(n) => at = n,
                    None => break,
                }
            }
        }
        Ok(())
    }

    fn pair(&self, p: &Spanned<Vec<Name>>, what: &str) -> Checked {
        let v = p.get_ref();
        if v.len() != 2 || v[0].get_ref() == v[1].get_ref() {
            return self.fail(p.span(), format!("{what} names two distinct regions"));
        }
        self.regions(v)
    }

    fn regions(&self, names: &[Name]) -> Checked {
        self.known_names(names, self.known.regions.as_ref(), "region")
    }

    /// Device classes are a fixed set (`tiercast_proto::DeviceClass`, the one a
    /// node declares in a byte of its `Register`).
    fn device_classes(&self, names: &[Name]) -> Checked {
        for n in names {
            if tiercast_proto::DeviceClass::from_name(n.get_ref()).is_none() {
                return self.fail(
                    n.span(),
                    format!(
                        "unknown device class `{}`: one of {}",
                        n.get_ref(),
                        tiercast_proto::DeviceClass::names()
                    ),
                );
            }
        }
        Ok(())
    }

    fn channels(&self, names: &[Name]) -> Checked {
        self.known_names(names, self.known.channels.as_ref(), "channel")
    }

    fn known_names(&self, names: &[Name], known: Option<&BTreeSet<String>>, what: &str) -> Checked {
        for n in names {
            if n.get_ref().is_empty() {
                return self.fail(n.span(), format!("empty {what} name"));
            }
            if known.is_some_and(|k| !k.contains(n.get_ref())) {
                return self.fail(n.span(), format!("unknown {what} `{}`", n.get_ref()));
            }
        }
        Ok(())
    }

    fn positive(&self, v: &Spanned<f64>, field: &str) -> Checked {
        let x = *v.get_ref();
        if !x.is_finite() || x <= 0.0 {
            return self.fail(
                v.span(),
                format!("{field} must be a positive number, not {x}"),
            );
        }
        Ok(())
    }

    fn within(&self, v: &Spanned<i64>, lo: i64, hi: i64, field: &str) -> Checked {
        let x = *v.get_ref();
        if !(lo..=hi).contains(&x) {
            return self.fail(v.span(), format!("{field} must be in {lo}..={hi}, not {x}"));
        }
        Ok(())
    }
}
