//! `tiercast cluster` end to end (issue 13): a small scenario run as real
//! processes — network namespaces when this runs as root (CI does), loopback
//! otherwise, and the test says which — with the origin in one region and every
//! relay and viewer in another 120 ms away (one way, emulated by the nodes' links:
//! this kernel has no netem). It checks that every process reported, that the
//! viewers played through a relay crash, that the emulated latency shows in the
//! measured lag (no block can arrive sooner than 120 ms after the origin cut it),
//! and that no namespace is left behind.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};
use support::{log_tails, temp_dir, BIN};

const SCENARIO: &str = r#"
name = "cluster-smoke"
seed = 7
duration_s = 30
data_plane = "blocks"
playout_deadline_ms = 4000
[stream]
rate_kbps = 600
block_bytes = 16384
keyframe_interval_ms = 1000
[[regions]]
name = "near"
[[regions]]
name = "far"
[latency]
matrix_ms = [[2, 120], [120, 2]]
jitter_ms = 2
[network]
coordinator_region = "near"
[[node_classes]]
name = "S"
role = "origin"
region = "near"
capacity = 4
uplink_kbps = { kind = "fixed", value = 20000 }
[[node_classes]]
name = "R"
role = "relay"
tier = 1
count = 3
region = "far"
capacity = 10
uplink_kbps = { kind = "fixed", value = 20000 }
[viewers]
downlink_kbps = { kind = "fixed", value = 20000 }
[[arrivals]]
kind = "flash_crowd"
count = 6
start_s = 3
over_s = 3
region = "far"
[[faults]]
kind = "crash"
tier = 1
count = 1
active = true
at_s = 18
[strategy]
parents_per_relay = 2
heartbeat_interval_ms = 1000
heartbeat_timeout_ms = 3500
"#;

fn our_namespaces() -> Vec<String> {
    let out = Command::new("ip").args(["netns", "list"]).output();
    let Ok(out) = out else { return Vec::new() };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with("tc") && (n.contains('n') || n.ends_with("hub")))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_scenario_runs_as_real_processes_and_writes_the_simulators_metrics() {
    let dir = temp_dir("cluster");
    let scenario = dir.join("smoke.toml");
    std::fs::write(&scenario, SCENARIO).expect("scenario");
    let out = dir.join("out");
    let before = our_namespaces();
    let log = std::fs::File::create(dir.join("cluster.log")).expect("log");
    let mut child = Command::new(BIN)
        .arg("cluster")
        .arg(&scenario)
        .arg("--out")
        .arg(&out)
        .stdout(log.try_clone().expect("dup"))
        .stderr(log)
        .spawn()
        .expect("tiercast cluster");
    let end = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Ok(Some(s)) = child.try_wait() {
            break s;
        }
        if Instant::now() > end {
            // SIGTERM: the cluster stops its processes and removes its namespaces.
            unsafe { libc_kill(child.id() as i32, 15) };
            let _ = child.wait();
            panic!("tiercast cluster did not finish in 120 s");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let text = std::fs::read_to_string(dir.join("cluster.log")).unwrap_or_default();
    println!("{text}");
    assert!(
        status.success(),
        "tiercast cluster failed:\n{text}\n{}",
        log_tails(&out.join("logs"), 10)
    );
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("metrics.json")).expect("metrics.json"))
            .expect("metrics.json is JSON");
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let network = m["network"].as_str().unwrap_or("?");
    println!(
        "network: {network} (root: {root}); fallback: {}",
        m["network_fallback"]
    );
    if root {
        assert_eq!(
            network, "namespaces",
            "as root the cluster must run in namespaces: {}",
            m["network_fallback"]
        );
    } else {
        assert_eq!(network, "loopback");
    }
    assert_eq!(m["processes_started"], 1 + 1 + 3 + 6);
    assert_eq!(m["processes_crashed"], 1, "the crash fault hit one relay");
    assert_eq!(
        m["reports_missing"].as_array().map(Vec::len),
        Some(0),
        "every process reported"
    );
    let continuity = m["continuity_index"].as_f64().expect("continuity");
    assert!(
        continuity >= 0.98,
        "viewers played through the crash: continuity {continuity}"
    );
    assert!(
        m["blocks_expected"].as_u64().unwrap_or(0) > 6 * 100,
        "viewers played ~20 s each"
    );
    let lag_p50 = m["lag_ms_p50"].as_u64().expect("lag measured");
    assert!(
        lag_p50 >= 120,
        "every block crossed the emulated 120 ms between the regions: lag p50 {lag_p50} ms"
    );
    for key in [
        "offload",
        "duplicate_factor",
        "control_overhead",
        "startup_delay_ms_p95",
    ] {
        assert!(!m[key].is_null(), "{key} is computed from the reports");
    }
    let after = our_namespaces();
    assert!(
        after.iter().all(|n| before.contains(n)),
        "namespaces left behind: {after:?} (before: {before:?})"
    );
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}
