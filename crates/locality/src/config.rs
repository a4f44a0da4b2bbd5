//! The locality machine's settings (L1–L6), units in the field names; the
//! defaults are seed 004's figures (tolerance 10 ms, 10 groups / 10 s, 6 links,
//! leadership list of 10, Alive every 5 s, leader gone after 10 s).

use thiserror::Error;

#[derive(Clone, Debug, PartialEq)]
pub struct LocalityConfig {
    /// L2: probes per measurement; the RTT is their minimum.
    pub probes_per_measure: u8,
    /// L2: spacing between the probes of one measurement.
    pub probe_interval_ms: u64,
    /// L2: a probe not answered by then is lost.
    pub probe_timeout_ms: u64,
    /// L2: Measure answered per sender per second (and the burst).
    pub measure_rate_per_peer: u32,
    /// L2: Measure answered per second over all senders (and the burst).
    pub measure_rate_total: u32,
    /// L3: |supplied − measured| must stay under this for every neighbour group.
    pub tolerance_ms: u64,
    /// L3: the joiner's own RTT to the candidate's leader must stay under this
    /// (a group's reported distances alone cannot pull a far node in).
    pub max_leader_rtt_ms: u64,
    /// L3: groups tested before founding a new one.
    pub max_groups_tested: u32,
    /// L3: time spent searching before founding a new one.
    pub search_limit_ms: u64,
    /// L3/L4: an unanswered request (neighbours, join, link) is given up.
    pub request_timeout_ms: u64,
    /// L4: inter-group links a group seeks (nearest first).
    pub target_links: usize,
    /// L4: no nearest-link beyond this RTT.
    pub link_bound_ms: u64,
    /// L4: links a leader accepts at most (new groups asking beyond are refused).
    pub max_links: usize,
    /// L5: leadership list length.
    pub leadership_len: usize,
    /// L5: the leader's Alive period.
    pub alive_interval_ms: u64,
    /// L5: no Alive for this long: the leader is presumed gone.
    pub leader_timeout_ms: u64,
    /// L5: leaderless election, random back-off in `[0, this]`.
    pub election_backoff_max_ms: u64,
    /// L5: after the first New Leader of a round, claims are gathered this long.
    pub election_settle_ms: u64,
    /// L5: members listed in an Alive at most (what an election can reach).
    pub max_members_in_alive: usize,
    /// L5: a member not heard for this many Alive periods is dropped.
    pub member_silence_periods: u32,
    /// Merge: a linked group whose leader is nearer than this is the same
    /// locality; the group with the higher id merges into the other.
    pub merge_rtt_ms: u64,
    /// L6: neighbour groups re-measured (and lost links restored) this often.
    pub remeasure_interval_ms: u64,
    /// L1: a leader tells the rendezvous its group this often.
    pub announce_interval_ms: u64,
    /// L1: groups handed out per boot request.
    pub boot_list_len: usize,
    /// L1: groups the rendezvous keeps at most.
    pub boot_cache_max: usize,
    /// L6: known groups (and measured RTTs) kept at most.
    pub cache_max: usize,
}

impl Default for LocalityConfig {
    fn default() -> Self {
        LocalityConfig {
            probes_per_measure: 3,
            probe_interval_ms: 20,
            probe_timeout_ms: 1000,
            measure_rate_per_peer: 20,
            measure_rate_total: 1000,
            tolerance_ms: 10,
            max_leader_rtt_ms: 20,
            max_groups_tested: 10,
            search_limit_ms: 10_000,
            request_timeout_ms: 2000,
            target_links: 6,
            link_bound_ms: 1000,
            max_links: 16,
            leadership_len: 10,
            alive_interval_ms: 5000,
            leader_timeout_ms: 10_000,
            election_backoff_max_ms: 10_000,
            election_settle_ms: 1000,
            max_members_in_alive: 1024,
            member_silence_periods: 3,
            merge_rtt_ms: 10,
            remeasure_interval_ms: 30_000,
            announce_interval_ms: 30_000,
            boot_list_len: 8,
            boot_cache_max: 4096,
            cache_max: 4096,
        }
    }
}

#[derive(Debug, Error, PartialEq)]
pub enum ConfigError {
    #[error("locality.{0} must be at least 1")]
    Zero(&'static str),
    #[error("locality.leader_timeout_ms ({timeout}) must exceed alive_interval_ms ({alive})")]
    Timeout { timeout: u64, alive: u64 },
}

impl LocalityConfig {
    /// Checked once at start.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let ones: [(&'static str, u64); 9] = [
            ("probes_per_measure", self.probes_per_measure as u64),
            ("probe_timeout_ms", self.probe_timeout_ms),
            ("measure_rate_per_peer", self.measure_rate_per_peer as u64),
            ("measure_rate_total", self.measure_rate_total as u64),
            ("max_groups_tested", self.max_groups_tested as u64),
            ("leadership_len", self.leadership_len as u64),
            ("alive_interval_ms", self.alive_interval_ms),
            ("remeasure_interval_ms", self.remeasure_interval_ms),
            ("announce_interval_ms", self.announce_interval_ms),
        ];
        for (name, v) in ones {
            if v == 0 {
                return Err(ConfigError::Zero(name));
            }
        }
        if self.leader_timeout_ms <= self.alive_interval_ms {
            return Err(ConfigError::Timeout {
                timeout: self.leader_timeout_ms,
                alive: self.alive_interval_ms,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_checks_bite() {
        assert_eq!(LocalityConfig::default().validate(), Ok(()));
        let c = LocalityConfig {
            leader_timeout_ms: 5000,
            ..Default::default()
        };
        assert!(c.validate().is_err());
        let c = LocalityConfig {
            probes_per_measure: 0,
            ..Default::default()
        };
        assert_eq!(c.validate(), Err(ConfigError::Zero("probes_per_measure")));
    }
}
