//! The files of a run (X5): metrics.json, timeline.csv (one row per virtual second:
//! t, viewers, active relays per tier, continuity, origin upload), timeline_regions.csv
//! (each region's continuity per second, with more than one region), nodes.csv (id,
//! label, role, class, tier, region, uplink and downlink — to read events.log by
//! label), and the timeline plots. events.log is written while the run goes.

use crate::report::Report;
use crate::world::{Role, Simulation};
use crate::SimError;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

fn io(path: &Path, e: std::io::Error) -> SimError {
    SimError::Io(format!("{}: {e}", path.display()))
}

pub(crate) fn write_all(sim: &Simulation, report: &mut Report) -> Result<(), SimError> {
    let Some(dir) = sim.opts.out_dir.clone() else {
        return Ok(());
    };
    std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
    write_timeline(sim, &dir.join("timeline.csv"))?;
    if sim.net.regions().len() > 1 {
        write_region_timeline(sim, &dir.join("timeline_regions.csv"))?;
    }
    if sim.sc.output.nodes_csv {
        write_nodes(sim, &dir.join("nodes.csv"))?;
    }
    if sim.sc.output.plots {
        if let Some(note) = crate::plot::draw(sim, &dir) {
            eprintln!("sim: {note}");
            report.metrics.notes.push(note);
        }
    }
    let path = dir.join("metrics.json");
    let json = serde_json::to_string_pretty(&report.metrics)
        .map_err(|e| SimError::Io(format!("metrics.json: {e}")))?;
    std::fs::write(&path, json + "\n").map_err(|e| io(&path, e))?;
    Ok(())
}

fn write_timeline(sim: &Simulation, path: &Path) -> Result<(), SimError> {
    let f = File::create(path).map_err(|e| io(path, e))?;
    let mut w = BufWriter::new(f);
    let mut head = String::from("t_s,viewers,served,joining,starving");
    for t in sim.tier_caps.keys() {
        head.push_str(&format!(",relays_tier{t}"));
    }
    head.push_str(",active_relays,relays_lower_bound,continuity,origin_upload_bps");
    writeln!(w, "{head}").map_err(|e| io(path, e))?;
    for r in &sim.metrics.timeline {
        let mut line = format!(
            "{},{},{},{},{}",
            r.t_s, r.viewers, r.served, r.joining, r.starving
        );
        for n in &r.relays_per_tier {
            line.push_str(&format!(",{n}"));
        }
        line.push_str(&format!(
            ",{},{},{:.6},{:.0}",
            r.active_relays, r.lower_bound, r.continuity, r.origin_upload_bps
        ));
        writeln!(w, "{line}").map_err(|e| io(path, e))?;
    }
    w.flush().map_err(|e| io(path, e))
}

/// One row per virtual second: each region's on-time continuity over the blocks
/// (or samples) of that second, from the ledger — where a fault's loss fell.
fn write_region_timeline(sim: &Simulation, path: &Path) -> Result<(), SimError> {
    let f = File::create(path).map_err(|e| io(path, e))?;
    let mut w = BufWriter::new(f);
    let regions = sim.net.regions();
    let mut head = String::from("t_s");
    for r in 0..regions.len() {
        head.push_str(&format!(",continuity_{}", regions.name(r as u16)));
    }
    writeln!(w, "{head}").map_err(|e| io(path, e))?;
    let secs = sim.end / 1_000_000;
    for t in 1..=secs {
        let mut line = t.to_string();
        for r in 0..regions.len() {
            match sim.region_continuity_in(Some(r), (t - 1) * 1_000_000, t * 1_000_000) {
                Some(c) => line.push_str(&format!(",{c:.6}")),
                None => line.push(','),
            }
        }
        writeln!(w, "{line}").map_err(|e| io(path, e))?;
    }
    w.flush().map_err(|e| io(path, e))
}

fn write_nodes(sim: &Simulation, path: &Path) -> Result<(), SimError> {
    let f = File::create(path).map_err(|e| io(path, e))?;
    let mut w = BufWriter::new(f);
    writeln!(
        w,
        "id,label,role,class,tier,region,uplink_kbps,downlink_kbps"
    )
    .map_err(|e| io(path, e))?;
    for (id, s) in sim.slots.iter().enumerate() {
        let id = id as u32;
        let (role, class, tier) = match s.role {
            Role::Coordinator => ("coordinator", String::new(), String::new()),
            Role::Viewer => ("viewer", String::new(), String::new()),
            Role::Origin | Role::Relay => {
                let c = &sim.sc.node_classes[s.group as usize];
                (
                    if s.role == Role::Origin {
                        "origin"
                    } else {
                        "relay"
                    },
                    c.name.clone(),
                    c.tier.to_string(),
                )
            }
        };
        let region = sim.net.regions().name(sim.net.region_of(id));
        writeln!(
            w,
            "{id},{},{role},{class},{tier},{region},{},{}",
            sim.label(tiercast_proto::NodeId(id)),
            sim.net.uplink_kbps(id),
            sim.net.downlink_kbps(id)
        )
        .map_err(|e| io(path, e))?;
    }
    w.flush().map_err(|e| io(path, e))
}
