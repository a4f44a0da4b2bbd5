//! `tiercast bench heartbeats` at a tiny size (issue 12, X7/D8): what can fail
//! does not — every heartbeat accepted by the coordinator's gate, none refused
//! as invalid, every peer a member of its overlay, every output drained, and
//! the arguments' bad values refused with a reason. No timing is asserted.

use super::{bench, Args};

fn args(nodes: u64) -> Args {
    Args {
        nodes,
        interval_ms: 5000,
        seconds: 10,
        warmup_seconds: 5,
        peers_per_channel: 100,
        relays: 4,
    }
}

#[test]
fn two_hundred_nodes_heartbeat_ten_virtual_seconds_all_accepted() {
    let a = args(200);
    let r = bench(&a, |_| {}).expect("runs");
    let peers = u64::from(r.plan.peers());
    assert_eq!(r.plan.channels(), 2);
    // Every peer is in its overlay; the origin and each relay in both.
    assert_eq!(r.members, peers + 2 * (1 + 4), "every peer joined");
    assert_eq!(r.measured.heartbeats, 2 * 200, "two intervals of 200");
    assert_eq!(r.measured.decode_errors, 0);
    assert_eq!(r.heartbeats_accepted, r.measured.heartbeats, "all accepted");
    assert_eq!(r.invalid_messages, 0, "the gate refused none");
    assert!(
        r.other_messages.is_empty(),
        "no refusal or move sent to a node: {:?}",
        r.other_messages
    );
    assert_eq!(r.outbox_left, 0, "outputs drained");
    assert!(r.links > 0 && r.measured.cpu_ns() > 0);
}

#[test]
fn bad_arguments_are_refused_with_a_reason() {
    let bad = |f: fn(&mut Args)| {
        let mut a = args(200);
        f(&mut a);
        a.plan().unwrap_err().to_string()
    };
    assert!(bad(|a| a.nodes = 3).contains("--nodes"));
    assert!(bad(|a| a.nodes = 10_000_000).contains("--nodes"));
    assert!(bad(|a| a.relays = 0).contains("--relays"));
    assert!(bad(|a| a.interval_ms = 0).contains("--interval-ms"));
    assert!(bad(|a| a.seconds = 0).contains("--seconds"));
    assert!(bad(|a| a.warmup_seconds = 5_000).contains("--warmup-seconds"));
    assert!(bad(|a| a.peers_per_channel = 0).contains("--peers-per-channel"));
    let too_many_channels = bad(|a| {
        a.nodes = 2_000;
        a.peers_per_channel = 1;
    });
    assert!(
        too_many_channels.contains("channels"),
        "{too_many_channels}"
    );
}
