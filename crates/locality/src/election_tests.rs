//! L5 property: a group whose whole leadership list crashed elects, and every
//! seeded run ends with exactly one leader that every survivor follows (issue
//! 14 Must show 2).

use crate::config::LocalityConfig;
use crate::machine::LocalityEvent;
use crate::testnet::TestNet;
use proptest::prelude::*;
use tiercast_proto::{NodeId, Timestamp};

fn run(seed: u64, n: u32, leadership_len: usize, jitter_ms: u64) -> Result<(), TestCaseError> {
    let cfg = LocalityConfig {
        leadership_len,
        ..Default::default()
    };
    // One metro: 1–5 ms one way (RTT with jitter stays under max_leader_rtt_ms), per pair, symmetric.
    let lat = Box::new(move |a: u32, b: u32| {
        let (x, y) = (a.min(b) as u64, a.max(b) as u64);
        1000 + (x * 7919 + y * 104_729 + seed) % 5 * 1000
    });
    let mut net = TestNet::new(n as usize + 1, cfg, seed, lat);
    net.jitter_us = jitter_ms * 1000;
    for i in 1..=n {
        net.join_at(i, Timestamp::from_millis(i as u64 * 300));
    }
    net.run_until(Timestamp::from_secs(40));
    let leaders = net.leaders();
    prop_assert_eq!(leaders.len(), 1, "one group before the crash");
    let old = net.nodes[leaders[0] as usize].group().unwrap().clone();
    prop_assert_eq!(old.members.len() as u32, n);
    for l in &old.leadership {
        net.crash(l.0);
    }
    let crash_at = net.now;
    net.run_until(Timestamp::from_secs(
        40 + 10 * (leadership_len as u64 + 1) + 120,
    ));
    let survivors: Vec<u32> = (1..=n).filter(|i| net.alive[*i as usize]).collect();
    let leaders = net.leaders();
    prop_assert_eq!(leaders.len(), 1, "exactly one leader, got {:?}", leaders);
    for i in &survivors {
        let g = net.nodes[*i as usize].group().unwrap();
        prop_assert_eq!(g.id, old.id, "no split: node {}", i);
        prop_assert_eq!(
            g.leader,
            NodeId(leaders[0]),
            "node {} follows the leader",
            i
        );
    }
    let elected = net.events.iter().any(|(t, _, e)| {
        *t > crash_at
            && matches!(
                e,
                LocalityEvent::BecameLeader {
                    how: crate::machine::Takeover::Election,
                    ..
                }
            )
    });
    prop_assert!(elected, "the leader came from an election");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn a_leaderless_election_ends_with_exactly_one_leader(
        seed in any::<u64>(),
        n in 8u32..40,
        leadership_len in 1usize..5,
        jitter_ms in 0u64..5,
    ) {
        run(seed, n, leadership_len, jitter_ms)?;
    }
}

#[test]
fn claims_racing_within_the_settle_window_still_give_one_leader() {
    // No back-off spread: every survivor claims at the same instant.
    for seed in 0..20 {
        let cfg = LocalityConfig {
            leadership_len: 2,
            election_backoff_max_ms: 0,
            ..Default::default()
        };
        let lat = Box::new(move |a: u32, b: u32| 1000 + ((a + b) as u64 + seed) % 5 * 1000);
        let mut net = TestNet::new(13, cfg, seed, lat);
        for i in 1..=12 {
            net.join_at(i, Timestamp::from_millis(i as u64 * 200));
        }
        net.run_until(Timestamp::from_secs(30));
        let l = net.leaders();
        let list = net.nodes[l[0] as usize].group().unwrap().leadership.clone();
        for x in list {
            net.crash(x.0);
        }
        net.run_until(Timestamp::from_secs(200));
        assert_eq!(net.leaders().len(), 1, "seed {seed}");
    }
}
