//! The policy store (C1's policy database, C3): the operators' policies in force
//! in this coordinator. A file is checked against the regions and channels the
//! coordinator knows and installed whole, or refused with the line and the
//! reason while the running policies stay (issue 11, must show 7). Installing is
//! an event ([`CoordEvent::PoliciesInstalled`]) the driver persists; the machine
//! itself keeps the file's text in memory only (no I/O here).
//!
//! A new file's rules are handed to the peer overlays at once (caps between
//! regions: `link_caps.rs`; parent rules: `parent_rules.rs`; relaying rules:
//! `relay_rules.rs`) and every overlay is recomputed in full (C7: any policy
//! change is a trigger).

use crate::coordinator::Coordinator;
use crate::event::CoordEvent;
use crate::policy::{check, Known, Policies, PolicyError};
use std::collections::BTreeSet;
use tiercast_proto::Timestamp;

/// Longest policy file accepted (a page of rules, not a data set).
pub const MAX_POLICY_BYTES: usize = 1 << 20;

/// The policies in force and the text they came from.
#[derive(Clone, Debug, Default)]
pub struct InstalledPolicies {
    pub policies: Policies,
    /// The file as installed (empty: no policies were ever installed).
    pub source: String,
    /// When it was installed (`None`: never).
    pub installed_at: Option<Timestamp>,
}

impl Coordinator {
    /// The regions (registered nodes') and channels (announced) a policy may name.
    pub fn known_names(&self) -> Known {
        let regions: BTreeSet<String> = self
            .registry
            .region_names()
            .filter(|r| !r.is_empty())
            .map(str::to_string)
            .collect();
        let channels: BTreeSet<String> = self.names.keys().cloned().collect();
        Known {
            regions: Some(regions),
            channels: Some(channels),
        }
    }

    /// Checks `source` against the known regions and channels and installs it;
    /// on a refusal nothing changes. Returns the number of rules in force.
    pub fn apply_policies(&mut self, now: Timestamp, source: &str) -> Result<usize, PolicyError> {
        let known = self.known_names();
        self.check_and_install(now, source, &known)
    }

    /// Installs a file kept from before a restart: checked (syntax, ranks,
    /// fall-backs) but not against known names, since the nodes have not
    /// registered again yet; it was checked against them when it was applied.
    pub fn restore_policies(&mut self, now: Timestamp, source: &str) -> Result<usize, PolicyError> {
        self.check_and_install(now, source, &Known::default())
    }

    /// The policies in force (none until a file is applied).
    pub fn policies(&self) -> &Policies {
        &self.policy.policies
    }

    /// The policies in force with their text, for the driver to persist.
    pub fn installed_policies(&self) -> &InstalledPolicies {
        &self.policy
    }

    fn check_and_install(
        &mut self,
        now: Timestamp,
        source: &str,
        known: &Known,
    ) -> Result<usize, PolicyError> {
        let checked = if source.len() > MAX_POLICY_BYTES {
            Err(PolicyError {
                line: 1,
                reason: format!(
                    "policy file of {} bytes, more than {MAX_POLICY_BYTES}",
                    source.len()
                ),
            })
        } else {
            check(source, known)
        };
        match checked {
            Ok(policies) => {
                let rules = policies.rule_count();
                self.policy = InstalledPolicies {
                    policies,
                    source: source.to_string(),
                    installed_at: Some(now),
                };
                self.events
                    .push_back(CoordEvent::PoliciesInstalled { rules });
                // In force at once, not at the next tick: parent rules, relaying
                // rules, then caps and the full recomputation (C7) with them all.
                self.refresh_parent_rules(true);
                self.apply_provider_rules();
                self.enforce_relay_rules(now, true);
                self.enforce_link_caps(now, true);
                // Servers or peers switched: moves start at the next tick.
                self.detect_source_switches(now);
                Ok(rules)
            }
            Err(e) => {
                self.events.push_back(CoordEvent::PoliciesRefused {
                    line: e.line,
                    reason: e.reason.clone(),
                });
                Err(e)
            }
        }
    }
}
