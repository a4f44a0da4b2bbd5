//! Bursts on the real coordinator and node machines (V6 server farms and the α
//! arrival-rate formula, V7 prediction: capacity over sp, MIN_s regrouping,
//! CONSOLIDATE within sp, and the relays' ΔT look-ahead), on the zero-latency bus.

mod support;

use support::Bus;
use tiercast_coordinator::manager::RelayPhase;
use tiercast_coordinator::{CoordEvent, CoordinatorConfig};
use tiercast_node::{Event, Node, NodeConfig};
use tiercast_proto::{ChannelId, Message, NodeId, NodeRole};

const S: u32 = 1;
const CH: ChannelId = ChannelId(1);

fn add_relay(bus: &mut Bus, id: u32, capacity: u32, min: u32, lookahead_ms: u64) {
    let cfg = NodeConfig {
        id: NodeId(id),
        role: NodeRole::Relay,
        tier: 1,
        capacity,
        max_threshold: capacity,
        min_threshold: min,
        predict_delta_t_ms: lookahead_ms,
        addr: format!("sim:{id}"),
        http_addr: format!("sim:{id}"),
        ..NodeConfig::default()
    };
    cfg.validate().expect("test config is valid");
    let now = bus.now;
    bus.nodes.insert(NodeId(id), Node::new(cfg, now));
    bus.settle();
}

/// An origin and one tier of `relays` relays (ids 1001, 1002, …); the channel starts
/// at once (relay 1001 is its start-up relay).
fn tier(cfg: CoordinatorConfig, relays: u32, capacity: u32, min: u32, lookahead_ms: u64) -> Bus {
    let mut bus = Bus::new(cfg);
    bus.add_node(S, NodeRole::Origin, 0, 10_000, 0);
    for i in 1..=relays {
        add_relay(&mut bus, 1000 + i, capacity, min, lookahead_ms);
    }
    bus.node(S).announce("live", [0; 32]);
    bus.settle();
    bus
}

/// Adds viewers `ids` and has them all ask for the channel at this instant.
fn arrive(bus: &mut Bus, ids: std::ops::Range<u32>) {
    for v in ids.clone() {
        bus.add_node(v, NodeRole::Viewer, 255, 0, 0);
    }
    for v in ids {
        let now = bus.now;
        bus.node(v).watch(now, "live");
    }
    bus.settle();
}

fn leave(bus: &mut Bus, ids: std::ops::Range<u32>) {
    for v in ids {
        let now = bus.now;
        bus.node(v).unwatch(now, "live");
    }
    bus.settle();
}

fn load(bus: &mut Bus, relay: u32) -> u32 {
    bus.node(relay).machine_load()
}

fn farms_activated(events: &[CoordEvent]) -> Vec<Vec<u32>> {
    events
        .iter()
        .filter_map(|e| match e {
            CoordEvent::FarmActivated { nodes, .. } => Some(nodes.iter().map(|n| n.0).collect()),
            _ => None,
        })
        .collect()
}

#[derive(Debug)]
struct Figures {
    /// DISTRIBUTE messages the coordinator received.
    distribute: u64,
    /// Those that started an activation round (the others were absorbed by a farm).
    rounds: usize,
    /// Viewers redirected to a relay activated on the spot for them (no active relay
    /// had room): the join waits for a cold relay — in a real network ΔT to set up
    /// routes and load the stream.
    cold_joins: usize,
    /// Viewers refused (WatchDenied, LoginDenied).
    denied: usize,
    relays_activated: usize,
}

const BURST_RELAYS: u32 = 100;
const BURST_VIEWERS: u32 = 500;
const BURST_MS: u64 = 3_000;
const STEP_MS: u64 = 10;

/// 500 viewers in 3 s, arrivals accelerating (0 to 333 per second: the start of a
/// live event), onto a tier of 100 relays of capacity 10; the arrivals of each
/// 10 ms arrive together.
fn burst(cfg: CoordinatorConfig, lookahead_ms: u64) -> Figures {
    let mut bus = tier(cfg, BURST_RELAYS, 10, 2, lookahead_ms);
    bus.advance(10_000); // the channel runs quietly before the event
    let arrived_by = |ms: u64| (BURST_VIEWERS as u64 * ms * ms / (BURST_MS * BURST_MS)) as u32;
    let mut cold_joins = 0;
    for step in 0..BURST_MS / STEP_MS {
        let (from, to) = (arrived_by(step * STEP_MS), arrived_by((step + 1) * STEP_MS));
        let since = bus.coord_events.len();
        arrive(&mut bus, 10_000 + from..10_000 + to);
        // Relays activated while these viewers were being placed were activated for them.
        let mut fresh = Vec::new();
        for e in &bus.coord_events[since..] {
            match e {
                CoordEvent::Activated { node, .. } => fresh.push(*node),
                CoordEvent::Redirected { to, .. } if fresh.contains(to) => cold_joins += 1,
                _ => {}
            }
        }
        bus.advance(STEP_MS);
    }
    bus.advance(5_000);
    let denied = bus
        .node_events
        .iter()
        .filter(|(_, e)| matches!(e, Event::WatchDenied { .. } | Event::LoginDenied { .. }))
        .count();
    let served: u32 = (1001..=1000 + BURST_RELAYS)
        .map(|r| load(&mut bus, r))
        .sum();
    assert_eq!(served, BURST_VIEWERS, "every viewer ends up watching");
    let count = |f: fn(&CoordEvent) -> bool| bus.coord_events.iter().filter(|e| f(e)).count();
    Figures {
        distribute: bus.coordinator.stats().distribute_events,
        rounds: count(|e| matches!(e, CoordEvent::DistributeRequested { .. }))
            - count(|e| matches!(e, CoordEvent::DistributeAbsorbed { .. })),
        cold_joins,
        denied,
        relays_activated: count(|e| matches!(e, CoordEvent::Activated { .. })),
    }
}

fn burst_cfg(prediction: bool, farms: bool) -> CoordinatorConfig {
    CoordinatorConfig {
        prediction,
        farms,
        alpha_arrival: 0.5,
        delta_t_ms: 2_000,
        stability_sp_ms: 10_000,
        max_farm_size: 16,
        ..CoordinatorConfig::default()
    }
}

#[test]
fn burst_needs_fewer_round_trips_and_cold_joins_with_prediction_and_farms() {
    let off = burst(burst_cfg(false, false), 0);
    let on = burst(burst_cfg(true, true), 0);
    eprintln!("burst of 500 viewers in 3 s onto 100 relays of capacity 10:");
    eprintln!("  prediction+farms OFF:              {off:?}");
    eprintln!("  prediction+farms ON:               {on:?}");
    // For the record (not asserted): each feature alone, and the relays' own ΔT
    // look-ahead, which at these rates asks as soon as a relay has a few viewers.
    let farms_only = burst(burst_cfg(false, true), 0);
    let prediction_only = burst(burst_cfg(true, false), 0);
    let ahead = burst(burst_cfg(true, true), 2_000);
    eprintln!("  farms only (V6):                   {farms_only:?}");
    eprintln!("  prediction only (V7):              {prediction_only:?}");
    eprintln!("  ON + relays' ΔT look-ahead of 2 s: {ahead:?}");
    eprintln!(
        "  the price of activating ahead: {} relays activated with farms and prediction, {} without",
        on.relays_activated, off.relays_activated
    );
    assert!(
        on.distribute < off.distribute && on.rounds < off.rounds,
        "DISTRIBUTE round-trips: on {on:?} vs off {off:?}"
    );
    assert!(
        on.cold_joins + on.denied < off.cold_joins + off.denied,
        "cold or denied joins: on {on:?} vs off {off:?}"
    );
}

fn farms_cfg() -> CoordinatorConfig {
    CoordinatorConfig {
        farms: true,
        alpha_arrival: 0.6,
        max_farm_size: 8,
        ..CoordinatorConfig::default()
    }
}

/// Relay 1001 fills at 10 s, relay 1002 (a farm of one) at 12 s: the α formula sizes
/// the next farm. Returns its members.
fn second_farm(bus: &mut Bus) -> Vec<u32> {
    bus.advance(10_000);
    arrive(bus, 100..110);
    // First DISTRIBUTE: New = 1 / 10 s = 0.1 = Average; Number_of_Proxies_assigned stays 1.
    assert_eq!(farms_activated(&bus.coord_events), vec![vec![1002]]);
    bus.advance(2_000);
    arrive(bus, 110..120);
    // New = 1 / 2 s = 0.5; Average = 0.5 + 0.6 · 0.1 = 0.56; Round(1 · 0.56 / 0.1) = 6.
    let farms = farms_activated(&bus.coord_events);
    assert_eq!(farms.len(), 2);
    assert_eq!(farms[1], vec![1003, 1004, 1005, 1006, 1007, 1008]);
    farms[1].clone()
}

#[test]
fn farm_size_follows_the_arrival_rate_and_viewers_go_round_robin() {
    let mut bus = tier(farms_cfg(), 16, 10, 2, 0);
    let farm = second_farm(&mut bus);
    // One viewer at a time: each goes to the next member in turn.
    for v in 120..150 {
        arrive(&mut bus, v..v + 1);
    }
    let homes: Vec<u32> = (120..126).map(|v| bus.watching_relay(v).unwrap()).collect();
    assert_eq!(homes, farm);
    let loads: Vec<u32> = farm.iter().map(|r| load(&mut bus, *r)).collect();
    assert_eq!(loads, vec![5; 6], "30 viewers spread evenly over 6 members");
    // A batch arriving at once is spread the same way.
    arrive(&mut bus, 150..162);
    let loads: Vec<u32> = farm.iter().map(|r| load(&mut bus, *r)).collect();
    assert_eq!(loads, vec![7; 6]);
}

#[test]
fn a_farm_members_distribute_counts_for_the_whole_farm() {
    let mut bus = tier(farms_cfg(), 16, 10, 2, 0);
    let farm = second_farm(&mut bus);
    bus.advance(1_000);
    let since = bus.coord_events.len();
    // 6 · 9 + 1 viewers: the first member reaches 10 while the others are at 9.
    arrive(&mut bus, 120..175);
    let events = bus.coord_events[since..].to_vec();
    let asked: Vec<u32> = events
        .iter()
        .filter_map(|e| match e {
            CoordEvent::DistributeRequested { node, .. } => Some(node.0),
            _ => None,
        })
        .collect();
    assert_eq!(asked, vec![farm[0]], "one DISTRIBUTE for the farm");
    assert!(events.iter().any(|e| matches!(e,
        CoordEvent::FarmContracting { nodes, .. }
            if nodes.iter().map(|n| n.0).collect::<Vec<_>>() == farm)));
    let m = bus.coordinator.channel(CH).unwrap();
    assert!(farm
        .iter()
        .all(|r| m.active[&NodeId(*r)].phase == RelayPhase::Contracting));
    let rounds = farms_activated(&events);
    assert_eq!(rounds.len(), 1, "one new activation round: {rounds:?}");
    let new_farm = rounds[0].clone();
    // The next viewers go to the new farm, not to the old members with one slot left.
    arrive(&mut bus, 175..177);
    assert!(new_farm.contains(&bus.watching_relay(175).unwrap()));
    assert!(new_farm.contains(&bus.watching_relay(176).unwrap()));
    // Another old member asking later is counted as the farm's: nothing new.
    let since = bus.coord_events.len();
    let now = bus.now;
    bus.coordinator.handle_message(
        now,
        NodeId(farm[1]),
        Message::Distribute {
            channel: CH,
            load: 10,
        },
    );
    bus.settle();
    let events = &bus.coord_events[since..];
    assert!(events
        .iter()
        .any(|e| matches!(e, CoordEvent::DistributeAbsorbed { node, .. } if node.0 == farm[1])));
    assert!(!events
        .iter()
        .any(|e| matches!(e, CoordEvent::Activated { .. })));
}

fn predict_cfg() -> CoordinatorConfig {
    CoordinatorConfig {
        prediction: true,
        delta_t_ms: 1_000,
        stability_sp_ms: 10_000,
        ..CoordinatorConfig::default()
    }
}

/// Relay 1001 (capacity 50) fills at once and asks; then viewers 200.. trickle in,
/// `per_tick` every 100 ms for 2 s.
fn fill_then_trickle(bus: &mut Bus, per_tick: u32) -> u32 {
    arrive(bus, 100..150);
    let mut v = 200;
    for _ in 0..20 {
        bus.advance(100);
        arrive(bus, v..v + per_tick);
        v += per_tick;
    }
    v
}

#[test]
fn consolidation_is_ignored_within_sp_while_arrivals_continue() {
    let mut bus = tier(predict_cfg(), 4, 50, 3, 0);
    fill_then_trickle(&mut bus, 1); // 0.01 logins/ms: 100 expected within sp
    let since = bus.coord_events.len();
    leave(&mut bus, 100..148); // 1001 drops to 2 < 3 and asks to CONSOLIDATE
    assert!(bus.coord_events[since..].iter().any(|e| matches!(e,
        CoordEvent::ConsolidateIgnored { node, why, .. }
            if node.0 == 1001 && why.contains("within sp"))));

    // Without the arrivals the same request is granted.
    let mut bus = tier(predict_cfg(), 4, 50, 3, 0);
    fill_then_trickle(&mut bus, 0);
    bus.advance(5_000);
    let since = bus.coord_events.len();
    leave(&mut bus, 100..148);
    assert!(bus.coord_events[since..]
        .iter()
        .any(|e| matches!(e, CoordEvent::Consolidated { node, .. } if node.0 == 1001)));
}

#[test]
fn distribute_adds_the_relays_the_next_sp_needs() {
    let mut bus = tier(predict_cfg(), 8, 50, 3, 0);
    let v = fill_then_trickle(&mut bus, 2); // 1002 took over at 1001's DISTRIBUTE
    let since = bus.coord_events.len();
    let rate = bus.coordinator.forecast().sys_login_rate(CH, 1);
    assert!(rate > 0.015, "SysLinRate {rate}");
    arrive(&mut bus, v..v + 10); // 1002 reaches 50 and asks
    let events = &bus.coord_events[since..];
    let (predicted, room, add) = events
        .iter()
        .find_map(|e| match e {
            CoordEvent::PredictedDistribute {
                predicted,
                room,
                add,
                ..
            } => Some((*predicted, *room, *add)),
            _ => None,
        })
        .expect("the predicted load over sp exceeds the room");
    // Every idle relay has 50 free: m = ceil((predicted − room) / 50).
    assert_eq!(add as u32, (predicted - room).div_ceil(50));
    assert!(add >= 2, "predicted {predicted}, room {room}");
    let activated = events
        .iter()
        .filter(|e| matches!(e, CoordEvent::Activated { .. }))
        .count();
    assert_eq!(activated, add);
}

#[test]
fn distribute_regroups_existing_relays_when_capacity_covers_sp() {
    // min_threshold 0: relay 1001 never consolidates, it keeps its room.
    let mut bus = tier(predict_cfg(), 4, 10, 0, 0);
    arrive(&mut bus, 100..110); // 1001 full: 1002 activated
    leave(&mut bus, 100..108); // 1001 back to 2, still contracting
    bus.advance(3_000);
    let since = bus.coord_events.len();
    arrive(&mut bus, 110..120); // 1002 full and asks
    let events = &bus.coord_events[since..];
    // Quiet rates: 1001's room covers the next ΔT alone (MIN_s = 1 = l).
    assert!(events.iter().any(|e| matches!(e,
        CoordEvent::Regrouped { nodes, .. } if nodes == &vec![NodeId(1001)])));
    assert!(!events
        .iter()
        .any(|e| matches!(e, CoordEvent::Activated { .. })));
    // 1001 is told to expand again and takes the next viewer.
    assert!(bus
        .node_events
        .iter()
        .any(|(n, e)| n.0 == 1001 && matches!(e, Event::Activated { .. })));
    arrive(&mut bus, 120..121);
    assert_eq!(bus.watching_relay(120), Some(1001));
}

#[test]
fn a_relay_distributes_early_when_full_within_delta_t() {
    let mut bus = tier(CoordinatorConfig::default(), 3, 50, 3, 1_000);
    let mut v = 100;
    while !bus
        .node_events
        .iter()
        .any(|(n, e)| n.0 == 1001 && matches!(e, Event::DistributeSent { .. }))
    {
        assert!(v < 150, "no DISTRIBUTE before the max threshold");
        arrive(&mut bus, v..v + 2); // 0.02 logins/ms: 20 more within ΔT = 1 s
        v += 2;
        bus.advance(100);
    }
    let sent_at = bus
        .node_events
        .iter()
        .find_map(|(n, e)| match e {
            Event::DistributeSent { load, .. } if n.0 == 1001 => Some(*load),
            _ => None,
        })
        .unwrap();
    assert!((25..50).contains(&sent_at), "DISTRIBUTE at load {sent_at}");
}

#[test]
fn a_relay_consolidates_only_while_logoffs_exceed_logins() {
    let mut bus = tier(CoordinatorConfig::default(), 3, 50, 3, 1_000);
    arrive(&mut bus, 100..150); // 1001 full: DISTRIBUTE, now contracting
    bus.advance(100); // 50 logins in the last 100 ms
    let consolidate_sent = |bus: &Bus| {
        bus.node_events
            .iter()
            .any(|(n, e)| n.0 == 1001 && matches!(e, Event::ConsolidateSent { .. }))
    };
    leave(&mut bus, 100..148); // below the min threshold, but log-ins still dominate
    assert!(!consolidate_sent(&bus));
    bus.advance(100); // the log-offs are folded in: contracting mode
    assert!(consolidate_sent(&bus));
    assert!(bus
        .coord_events
        .iter()
        .any(|e| matches!(e, CoordEvent::Consolidated { node, .. } if node.0 == 1001)));
}
