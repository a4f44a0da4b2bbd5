//! Prometheus `/metrics` of every role over real processes (issue 16, Must
//! show 3; X4): a coordinator, an origin fed by ffmpeg over TCP (its metrics
//! on `--metrics-listen`), a tier-1 relay, a tier-2 relay, a peer and an HTTP
//! viewer. Every page is parsed with a real parser (`prometheus-parse`) and
//! checked for the format's rules a lenient parser does not enforce (one
//! `# TYPE` per family, before its samples; counters end `_total`; every
//! sample's value parses; every name starts `tiercast_` and is documented in
//! docs/METRICS.md). While the stream runs, two scrapes 3 s apart show the
//! values move: blocks out of the tier-1 relay, blocks stored at the origin,
//! the ingest bitrate, heartbeats at the coordinator.

mod support;

use prometheus_parse::{Scrape, Value};
use std::collections::BTreeSet;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::*;

/// GET `/metrics` at `base` (http://host:port): the page, its Content-Type checked.
fn scrape_text(base: &str) -> Option<String> {
    let r = http_get(&format!("{base}/metrics"), Duration::from_millis(800)).ok()?;
    if r.status != 200 {
        return None;
    }
    assert_eq!(
        r.header("Content-Type"),
        Some("text/plain; version=0.0.4; charset=utf-8"),
        "{base}"
    );
    Some(r.text())
}

/// Parses a page, checks the rules, returns the samples.
fn parse_checked(role: &str, page: &str, documented: &str) -> Scrape {
    let mut typed = BTreeSet::new();
    let mut sample_lines = 0;
    for line in page.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut words = rest.split_whitespace();
            let name = words.next().expect("a TYPE names its family");
            let kind = words.next().expect("a TYPE gives a type");
            assert!(
                typed.insert(name.to_string()),
                "{role}: two TYPE lines for {name}"
            );
            assert!(name.starts_with("tiercast_"), "{role}: {name} not prefixed");
            assert!(
                kind != "counter" || name.ends_with("_total"),
                "{role}: counter {name} does not end _total"
            );
            assert!(
                documented.contains(&format!("`{name}`")),
                "{role}: {name} is not in docs/METRICS.md"
            );
        } else if !line.starts_with('#') && !line.is_empty() {
            let name = line
                .split(['{', ' '])
                .next()
                .expect("a sample line starts with its name");
            assert!(
                typed.contains(name),
                "{role}: sample of {name} before its TYPE"
            );
            sample_lines += 1;
        }
    }
    let scrape = Scrape::parse(page.lines().map(|l| Ok(l.to_string()))).expect("the page parses");
    assert_eq!(
        scrape.samples.len(),
        sample_lines,
        "{role}: every sample's value parses"
    );
    assert!(
        scrape.samples.len() >= 10,
        "{role}: a real page, got {page}"
    );
    scrape
}

/// The value of `name` whose labels include `labels`.
fn value(s: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    s.samples
        .iter()
        .find(|x| x.metric == name && labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .map(|x| match x.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
            _ => f64::NAN,
        })
}

#[test]
fn every_role_serves_metrics_that_parse_and_move() {
    require_ffmpeg();
    let dir = temp_dir("e2e-metrics");
    let documented = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/METRICS.md"),
    )
    .expect("docs/METRICS.md");
    let cport = free_port();
    let coordinator = format!("http://127.0.0.1:{cport}");
    let _coord = Proc::tiercast(
        "coordinator",
        &[
            "coordinator",
            "--listen",
            &format!("127.0.0.1:{cport}"),
            "--stream-kbps",
            "1000",
        ],
        &dir,
    );
    let (r1, r2, peer_http, origin_http) = (free_port(), free_port(), free_port(), free_port());
    let _relays = [
        relay_proc(
            "relay-t1",
            &coordinator,
            "1",
            &[
                "--listen",
                &format!("127.0.0.1:{r1}"),
                "--uplink-kbps",
                "20000",
            ],
            &dir,
        ),
        relay_proc(
            "relay-t2",
            &coordinator,
            "2",
            &["--listen", &format!("127.0.0.1:{r2}")],
            &dir,
        ),
    ];
    let ingest = format!("127.0.0.1:{}", free_port());
    let _origin = Proc::tiercast(
        "origin",
        &[
            "origin",
            "--coordinator",
            &coordinator,
            "--channel",
            "metrics",
            "--tcp",
            &ingest,
            "--metrics-listen",
            &format!("127.0.0.1:{origin_http}"),
        ],
        &dir,
    );
    wait_for("origin ingest", Duration::from_secs(20), || {
        std::net::TcpStream::connect(&ingest).ok()
    });
    let _push = Proc::spawn(
        "ffmpeg-push",
        Command::new("ffmpeg")
            .args([
                "-hide_banner",
                "-nostdin",
                "-v",
                "error",
                "-re",
                "-f",
                "lavfi",
            ])
            .args(["-i", "testsrc2=size=320x240:rate=25", "-t", "120"])
            .args([
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-g",
                "25",
                "-pix_fmt",
                "yuv420p",
            ])
            .args(["-f", "mpegts", &format!("tcp://{ingest}")]),
        &dir,
    );
    let _peer = Proc::tiercast(
        "peer",
        &[
            "peer",
            "--coordinator",
            &coordinator,
            "--channel",
            "metrics",
            "--uplink-kbps",
            "2000",
            "--http",
            &format!("127.0.0.1:{peer_http}"),
        ],
        &dir,
    );
    // An HTTP viewer keeps a relay path busy for the whole scrape window.
    let stop = Arc::new(AtomicBool::new(false));
    let viewer = {
        let stop = stop.clone();
        let url = format!("{coordinator}/watch/metrics");
        std::thread::spawn(move || {
            let loc = try_wait_for(Duration::from_secs(30), || {
                let r = http_get(&url, Duration::from_millis(500)).ok()?;
                (r.status == 302).then(|| r.header("Location").map(str::to_string))?
            });
            loc.map(|l| {
                capture_stream(
                    &l,
                    std::time::Instant::now() + Duration::from_secs(30),
                    &stop,
                )
            })
        })
    };

    let bases = [
        ("coordinator", coordinator.clone()),
        ("origin", format!("http://127.0.0.1:{origin_http}")),
        ("relay-t1", format!("http://127.0.0.1:{r1}")),
        ("relay-t2", format!("http://127.0.0.1:{r2}")),
        ("peer", format!("http://127.0.0.1:{peer_http}")),
    ];
    // Wait until the tier-1 relay forwards blocks and the origin has reported
    // a bitrate (its ingest report comes every 5 s).
    wait_for(
        "blocks out of the tier-1 relay",
        Duration::from_secs(40),
        || {
            let s = parse_checked("relay-t1", &scrape_text(&bases[2].1)?, &documented);
            (value(&s, "tiercast_blocks_out_total", &[])? > 0.0).then_some(())
        },
    );
    wait_for(
        "the origin's ingest bitrate",
        Duration::from_secs(20),
        || {
            let s = parse_checked("origin", &scrape_text(&bases[1].1)?, &documented);
            let b = value(
                &s,
                "tiercast_ingest_bitrate_bits_per_second",
                &[("channel", "metrics")],
            )?;
            (b > 0.0).then_some(())
        },
    );
    let first: Vec<Scrape> = bases
        .iter()
        .map(|(role, base)| {
            let page = wait_for(&format!("{role} /metrics"), Duration::from_secs(20), || {
                scrape_text(base)
            });
            parse_checked(role, &page, &documented)
        })
        .collect();
    std::thread::sleep(Duration::from_secs(3));
    let second: Vec<Scrape> = bases
        .iter()
        .map(|(role, base)| {
            parse_checked(
                role,
                &scrape_text(base).expect("second scrape"),
                &documented,
            )
        })
        .collect();
    // What a scrape costs, while streaming: page size, time to the whole page.
    for (role, base) in &bases {
        let mut ms: Vec<f64> = (0..20)
            .map(|_| {
                let t = std::time::Instant::now();
                scrape_text(base).expect("scrape");
                t.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        ms.sort_by(f64::total_cmp);
        let bytes = scrape_text(base).map_or(0, |p| p.len());
        eprintln!(
            "{role}: page {bytes} B; 20 scrapes: median {:.2} ms, worst {:.2} ms",
            ms[10], ms[19]
        );
    }
    stop.store(true, Ordering::Relaxed);

    for (i, (role, _)) in bases.iter().enumerate() {
        eprintln!("{role}: {} samples", second[i].samples.len());
    }
    let moved = |i: usize, name: &str, labels: &[(&str, &str)]| {
        let a =
            value(&first[i], name, labels).unwrap_or_else(|| panic!("{} has {name}", bases[i].0));
        let b =
            value(&second[i], name, labels).unwrap_or_else(|| panic!("{} has {name}", bases[i].0));
        eprintln!("{}: {name}{labels:?} {a} -> {b}", bases[i].0);
        assert!(
            b > a,
            "{} {name} moved while streaming: {a} -> {b}",
            bases[i].0
        );
    };
    // Coordinator.
    moved(0, "tiercast_coordinator_heartbeats_total", &[]);
    assert_eq!(
        value(&second[0], "tiercast_coordinator_leading", &[]),
        Some(1.0)
    );
    for (role, tier) in [
        ("origin", "0"),
        ("relay", "1"),
        ("relay", "2"),
        ("peer", "0"),
    ] {
        let n = value(
            &second[0],
            "tiercast_coordinator_nodes",
            &[("role", role), ("tier", tier), ("alive", "true")],
        );
        assert!(
            n.is_some_and(|n| n >= 1.0),
            "coordinator counts a {role} in tier {tier}: {n:?}"
        );
    }
    assert!(value(
        &second[0],
        "tiercast_coordinator_events_total",
        &[("kind", "node_registered")]
    )
    .is_some_and(|n| n >= 4.0));
    // Origin: blocks cut and stored, its ingest's health.
    moved(
        1,
        "tiercast_channel_blocks_stored_total",
        &[("channel", "metrics")],
    );
    moved(1, "tiercast_link_bytes_out_total", &[("kind", "media")]);
    let bitrate = value(
        &second[1],
        "tiercast_ingest_bitrate_bits_per_second",
        &[("channel", "metrics")],
    );
    eprintln!("origin ingest bitrate {bitrate:?} bit/s");
    assert!(
        bitrate.is_some_and(|b| b > 10_000.0),
        "ingest bitrate: {bitrate:?}"
    );
    assert_eq!(
        value(
            &second[1],
            "tiercast_ingest_publishing",
            &[("channel", "metrics")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&second[1], "tiercast_node_info", &[("role", "origin")]),
        Some(1.0)
    );
    // Tier-1 relay: blocks out move; its link to the origin has an RTT.
    moved(2, "tiercast_blocks_out_total", &[]);
    moved(
        2,
        "tiercast_channel_blocks_stored_total",
        &[("channel", "metrics")],
    );
    assert!(value(
        &second[2],
        "tiercast_link_rtt_seconds",
        &[("peer", "coordinator")]
    )
    .is_some());
    let parent_rtt = second[2].samples.iter().find(|x| {
        x.metric == "tiercast_link_rtt_seconds" && x.labels.get("peer") != Some("coordinator")
    });
    assert!(
        parent_rtt.is_some(),
        "the tier-1 relay has its parent's RTT"
    );
    // Tier-2 relay and peer: their own pages.
    assert_eq!(
        value(&second[3], "tiercast_node_info", &[("role", "relay")]),
        Some(1.0)
    );
    assert_eq!(
        value(&second[4], "tiercast_node_info", &[("role", "peer")]),
        Some(1.0)
    );
    let peer_blocks = (
        value(
            &first[4],
            "tiercast_channel_blocks_stored_total",
            &[("channel", "metrics")],
        ),
        value(
            &second[4],
            "tiercast_channel_blocks_stored_total",
            &[("channel", "metrics")],
        ),
    );
    eprintln!("peer blocks stored {peer_blocks:?}");
    let captured = viewer.join().expect("viewer thread");
    eprintln!(
        "HTTP viewer: {:?} bytes",
        captured.map(|c| c.map(|b| b.len()).map_err(|e| e.to_string()))
    );
    let _ = std::fs::remove_dir_all(&dir);
}
