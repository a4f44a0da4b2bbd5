//! A checked set of policies (C3): only [`super::check`] makes one. Rules are
//! ranked by strictness (stricter first, ties in file order); a rule some other
//! rule names as its fall-back is dormant — it is applied only in that rule's
//! place ([`Policies::fallback_of`]), never on its own.
//!
//! The per-kind questions the parent selection (C4) will ask are in
//! [`super::network`], [`super::provider`] and [`super::client`].

use super::file::{Name, PolicyFile};
use std::collections::BTreeSet;
use toml::Spanned;

/// Why a viewer or node is refused: the rule and what to tell it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub rule: String,
    pub reason: String,
}

#[derive(Clone, Debug, Default)]
pub struct Policies {
    pub(super) file: PolicyFile,
    /// Rules named as another's fall-back.
    dormant: BTreeSet<String>,
}

/// One rule's rank, for listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ranked {
    pub kind: &'static str,
    pub name: String,
    pub strictness: i64,
    pub fallback: Option<String>,
}

impl Policies {
    pub(super) fn new(file: PolicyFile) -> Self {
        let dormant = file
            .rules()
            .iter()
            .filter_map(|r| r.fallback.map(|f| f.get_ref().clone()))
            .collect();
        Policies { file, dormant }
    }

    /// No rules at all (everything allowed).
    pub fn none() -> Self {
        Policies::default()
    }

    pub fn rule_count(&self) -> usize {
        self.file.rules().len()
    }

    /// Every rule, strictest first (ties in file order).
    pub fn by_strictness(&self) -> Vec<Ranked> {
        let mut v: Vec<Ranked> = self
            .file
            .rules()
            .into_iter()
            .map(|r| Ranked {
                kind: r.kind,
                name: r.name.get_ref().clone(),
                strictness: *r.strictness.get_ref(),
                fallback: r.fallback.map(|f| f.get_ref().clone()),
            })
            .collect();
        v.sort_by_key(|r| std::cmp::Reverse(r.strictness));
        v
    }

    /// The rule declared to apply in `rule`'s place when it would leave a viewer
    /// with nothing.
    pub fn fallback_of(&self, rule: &str) -> Option<&str> {
        self.file
            .rules()
            .into_iter()
            .find(|r| r.name.get_ref() == rule)
            .and_then(|r| r.fallback)
            .map(|f| f.get_ref().as_str())
    }

    /// Whether `rule` applies only in place of another.
    pub fn is_dormant(&self, rule: &str) -> bool {
        self.dormant.contains(rule)
    }

    /// The category names a channel belongs to.
    pub fn categories_of(&self, channel: &str) -> Vec<&str> {
        self.file
            .categories
            .iter()
            .filter(|(_, chans)| names_contain(chans, channel))
            .map(|(c, _)| c.as_str())
            .collect()
    }
}

/// The strictest of the active (not dormant) candidates, ties in file order.
pub(super) fn strictest<'a, T>(
    p: &Policies,
    rules: impl Iterator<Item = &'a T>,
    name: impl Fn(&T) -> &Name,
    strictness: impl Fn(&T) -> &Spanned<i64>,
) -> Option<&'a T>
where
    T: 'a,
{
    let mut best: Option<&'a T> = None;
    for r in rules {
        if p.is_dormant(name(r).get_ref()) {
            continue;
        }
        if best.is_none_or(|b| strictness(r).get_ref() > strictness(b).get_ref()) {
            best = Some(r);
        }
    }
    best
}

/// An empty list means "every channel" (or region, class).
pub(super) fn applies(list: &[Name], value: &str) -> bool {
    list.is_empty() || names_contain(list, value)
}

pub(super) fn names_contain(list: &[Name], value: &str) -> bool {
    list.iter().any(|n| n.get_ref() == value)
}
