//! The coordinator's `GET /status` JSON (X4): nodes, channels (active relays per
//! tier, the origin's last ingest report), history, counters and the event log,
//! written from the machine's read-only views and the driver's counters; a
//! standby's own page when the process does not lead ([`super::standby`]).

use super::Driver;
use serde_json::{json, Value};

const STATUS_HISTORY: usize = 1000;

impl Driver {
    pub(super) fn status(&self) -> Value {
        let Some(machine) = self.machine.as_ref() else {
            return self.standby_status();
        };
        let reg = machine.registry();
        let nodes: Vec<Value> = reg
            .iter()
            .map(|(id, r)| {
                json!({
                    "id": id.0, "role": format!("{:?}", r.role).to_lowercase(), "tier": r.tier,
                    "region": &*r.region, "alive": r.alive, "load": r.estimated_load(),
                    "capacity": r.capacity, "addr": r.info.addr, "http": r.info.http_addr,
                })
            })
            .collect();
        let now = self.clock.now();
        let channels: Vec<Value> = machine
            .channels()
            .map(|m| {
                let active: Vec<Value> = m
                    .active
                    .iter()
                    .map(|(n, a)| {
                        json!({
                            "node": n.0, "tier": a.tier,
                            "phase": format!("{:?}", a.phase).to_lowercase(),
                            "parents": a.parents.iter().map(|p| p.0).collect::<Vec<_>>(),
                            "load": reg.get(*n).map(|r| r.estimated_load()).unwrap_or(0),
                        })
                    })
                    .collect();
                let per_tier: serde_json::Map<String, Value> = m
                    .count_per_tier()
                    .into_iter()
                    .map(|(t, c)| (t.to_string(), json!(c)))
                    .collect();
                // The origin's last ingest report (X1, issue 17).
                let ingest = machine.ingest_report(m.desc.id).map(|r| {
                    let h = &r.report;
                    json!({
                        "from": r.origin.0, "age_ms": now.saturating_since(r.at) / 1000,
                        "publishing": h.publishing, "bitrate_in_kbps": h.bitrate_in_kbps,
                        "keyframe_interval_ms": h.keyframe_interval_ms, "gaps": h.gaps,
                        "longest_gap_ms": h.longest_gap_ms,
                        "timestamp_jumps": h.timestamp_jumps, "stalled": h.stalled,
                        "stalls": h.stalls,
                    })
                });
                json!({
                    "id": m.desc.id.0, "name": m.desc.name, "origin": m.origin.0,
                    "active_per_tier": per_tier, "active": active, "ingest": ingest,
                })
            })
            .collect();
        let history: Vec<Value> = machine
            .history()
            .iter()
            .take(STATUS_HISTORY)
            .map(|(id, h)| {
                json!({
                    "node": id.0, "sessions": h.sessions,
                    "availability": h.availability(now),
                    "declared_uplink_kbps": h.declared_uplink_kbps,
                    "achieved_uplink_kbps": h.achieved_uplink_kbps.round(),
                    "fed_stall_rate": h.fed_stall_rate(),
                    "score": machine.history().score(now, *id),
                })
            })
            .collect();
        // Caps between regions in force in each peer overlay (C3, C5).
        let region_names: Vec<&str> = machine.registry().region_names().collect();
        let name = |r: tiercast_coordinator::registry::RegionId| {
            region_names.get(usize::from(r.0)).copied().unwrap_or("?")
        };
        let link_caps: Vec<Value> = machine
            .peer_overlays()
            .flat_map(|o| {
                o.region_caps().caps().map(move |(pair, allowed)| {
                    json!({
                        "channel": o.desc.name,
                        "regions": [name(pair.0), name(pair.1)],
                        "allowed_bps": allowed,
                        "booked_bps": o.booked_across(pair),
                        "links_shed": o.region_caps().shed,
                    })
                })
            })
            .collect();
        // The peers on each overlay's top level (D3): `tiercast cluster` aims
        // a scenario's `top_peers` faults at them.
        let top_peers: Vec<Value> = machine
            .peer_overlays()
            .map(|o| {
                let ids: Vec<u32> = o
                    .members
                    .values()
                    .filter(|m| m.top && m.kind == tiercast_coordinator::peers::MemberKind::Peer)
                    .map(|m| m.info.id.0)
                    .collect();
                json!({"channel": o.desc.name, "peers": ids})
            })
            .collect();
        // Every manager, whatever its strategy, through the one read-only view (C1).
        let managers: Vec<Value> = machine
            .managers()
            .map(|m| {
                json!({
                    "channel": m.channel().name, "strategy": m.strategy().name(),
                    "carried": m.carried(),
                })
            })
            .collect();
        // The content directory's bottom clusters (C1, C8): (channel, region,
        // network prefixes) → the cluster's manager, with its members.
        let clusters: Vec<Value> = machine
            .peer_overlays()
            .flat_map(|o| {
                o.clusters().iter().map(move |(r, c)| {
                    json!({
                        "channel": o.desc.name, "region": name(r), "manager": c.id.0,
                        "prefix_buckets": [c.lo, c.hi], "members": c.members,
                    })
                })
            })
            .collect();
        let s = machine.stats();
        json!({
            "epoch": machine.config().epoch,
            "role": if machine.superseded_by().is_some() { "superseded" } else { "leader" },
            "superseded_by": machine.superseded_by(),
            "leader": self.leadership.as_ref().map(|_| self.config_advertise()),
            "manager": self.held_manager(),
            "stands_for": self.stands_for(),
            "directory": self.directory_json(),
            "managers": managers,
            "clusters": clusters,
            "link_caps": link_caps,
            "top_peers": top_peers,
            "links": self.links.stats(),
            "history": history,
            "nodes": nodes,
            "channels": channels,
            "stats": {
                "distribute_events": s.distribute_events, "consolidate_events": s.consolidate_events,
                "redirects": s.redirects, "denied": s.denied, "heartbeats": s.heartbeats,
                "invalid_messages": s.invalid_messages, "send_errors": self.send_errors,
                "orders_dropped": self.orders_dropped,
                "served_elsewhere": self.served_elsewhere,
                "newer_epoch_heartbeats": s.newer_epoch_heartbeats,
                "orders_withheld": s.orders_withheld,
            },
            "net_emulation": self.links.emulation_stats(),
            "events": self.history.iter().map(|(t, e)| json!({"ms": t, "event": e})).collect::<Vec<_>>(),
        })
    }
}
