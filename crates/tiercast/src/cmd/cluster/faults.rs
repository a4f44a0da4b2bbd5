//! A scenario's crashes and leaves aimed at live processes (issue 13; V9, V10, D3
//! faults as the simulator reads them, crates/sim/src/faults.rs): the targets are
//! chosen when the fault fires, among the processes still running — by label, by
//! class and tier, only relays the coordinator has active (`active`), or the peers
//! on the overlay's top level (`top_peers`, from the coordinator's `/status`) —
//! `fraction` of them rounded, or `count`, drawn with the run's seed.

use super::plan::{PlannedFault, PlannedNode, Role};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

/// Node ids in the coordinator's `/status` under `channels[].active[].node`.
fn active_ids(status: &Value) -> Vec<u64> {
    status
        .get("channels")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|c| {
            c.get("active")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .filter_map(|a| a.get("node").and_then(Value::as_u64))
        .collect()
}

/// Node ids under `top_peers[].peers`.
fn top_ids(status: &Value) -> Vec<u64> {
    status
        .get("top_peers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|c| {
            c.get("peers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .filter_map(Value::as_u64)
        .collect()
}

/// Indexes of the nodes `f` hits; `alive[i]`: node i runs now.
pub fn targets(
    f: &PlannedFault,
    nodes: &[PlannedNode],
    alive: &[bool],
    status: &Value,
    rng: &mut ChaCha8Rng,
) -> Vec<usize> {
    let active = active_ids(status);
    let top = top_ids(status);
    let mut pool: Vec<usize> = nodes
        .iter()
        .filter(|n| alive[n.index])
        .filter(|n| {
            if let Some(labels) = &f.labels {
                return labels.contains(&n.label);
            }
            if f.top_peers {
                return n.role == Role::Peer && top.contains(&(n.index as u64));
            }
            let Role::Relay { tier } = n.role else {
                return false;
            };
            f.class.as_ref().is_none_or(|c| *c == n.class)
                && f.tier.is_none_or(|t| t == tier)
                && (!f.active || active.contains(&(n.index as u64)))
        })
        .map(|n| n.index)
        .collect();
    let k = match (f.labels.is_some(), f.fraction, f.count) {
        (true, _, _) => pool.len(),
        (_, Some(fr), _) => (pool.len() as f64 * fr).round() as usize,
        (_, None, Some(n)) => n as usize,
        _ => 0,
    }
    .min(pool.len());
    for i in 0..k {
        let j = rng.gen_range(i..pool.len());
        pool.swap(i, j);
    }
    pool.truncate(k);
    pool.sort_unstable();
    pool
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;
    use serde_json::json;

    fn node(index: usize, role: Role) -> PlannedNode {
        PlannedNode {
            index,
            label: format!("n{index}"),
            class: "T2_".into(),
            role,
            region: 0,
            uplink_kbps: 0,
            downlink_kbps: 0,
            capacity: 0,
            max_threshold: None,
            min_threshold: None,
            start_s: 0.0,
            leave_s: None,
        }
    }

    fn fault() -> PlannedFault {
        PlannedFault {
            at_s: 1.0,
            crash: true,
            labels: None,
            class: None,
            tier: Some(2),
            fraction: Some(0.5),
            count: None,
            active: true,
            top_peers: false,
        }
    }

    #[test]
    fn active_relays_of_the_tier_alive_now() {
        let nodes: Vec<_> = (0..6)
            .map(|i| {
                node(
                    i,
                    if i < 5 {
                        Role::Relay { tier: 2 }
                    } else {
                        Role::Peer
                    },
                )
            })
            .collect();
        let alive = [true, true, true, true, false, true];
        let status = json!({"channels": [{"active": [{"node": 1}, {"node": 2}, {"node": 4}, {"node": 5}]}],
                            "top_peers": [{"peers": [5]}]});
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let t = targets(&fault(), &nodes, &alive, &status, &mut rng);
        assert_eq!(t.len(), 1, "half of the two alive active relays of tier 2");
        assert!(t[0] == 1 || t[0] == 2);
        let top = PlannedFault {
            top_peers: true,
            fraction: None,
            count: Some(3),
            ..fault()
        };
        assert_eq!(targets(&top, &nodes, &alive, &status, &mut rng), vec![5]);
    }
}
