//! Tests of the sans-IO network emulation (`emulate.rs`, issue 13): seeded
//! verdicts, per-destination FIFO under jitter, the loss fraction, the longest
//! prefix, and a bad file's error naming the problem.

use super::emulate::{Cidr, EmulationStats, Emulator, NetEmulation, Verdict};
use std::net::IpAddr;

const TWO: &str = r#"
region = "eu"
seed = 7
[latency]
regions = ["eu", "us"]
matrix_ms = [[6, 45], [44, 7]]
jitter_ms = 2
[network]
loss = 0.0
[[subnets]]
cidr = "10.77.1.0/24"
region = "eu"
[[subnets]]
cidr = "10.77.2.0/24"
region = "us"
"#;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn with_loss(loss: f64, jitter_ms: u32) -> NetEmulation {
    let text = TWO
        .replace("loss = 0.0", &format!("loss = {loss}"))
        .replace("jitter_ms = 2", &format!("jitter_ms = {jitter_ms}"));
    NetEmulation::parse(&text).unwrap()
}

#[test]
fn delays_follow_the_row_of_the_senders_region() {
    let cfg = with_loss(0.0, 0);
    let mut e = Emulator::new(cfg);
    assert_eq!(e.on_send(1_000, ip("10.77.2.9"), 1200), Verdict::At(46_000));
    assert_eq!(e.on_send(1_000, ip("10.77.1.3"), 1200), Verdict::At(7_000));
    // Unknown destination: at once, counted, never lost.
    assert_eq!(e.on_send(1_000, ip("192.0.2.1"), 1200), Verdict::At(1_000));
    // An IPv4-mapped IPv6 destination is its IPv4 address.
    assert_eq!(
        e.on_send(2_000, ip("::ffff:10.77.2.9"), 1200),
        Verdict::At(47_000)
    );
    assert_eq!(
        e.stats(),
        EmulationStats {
            datagrams: 4,
            delayed: 3,
            lost: 0,
            unknown_destination: 1,
            queue_full: 0,
            queued: 0,
        }
    );
}

#[test]
fn same_seed_same_verdicts_other_seed_other_verdicts() {
    let run = |seed: u64| {
        let text = TWO
            .replace("seed = 7", &format!("seed = {seed}"))
            .replace("loss = 0.0", "loss = 0.3");
        let mut e = Emulator::new(NetEmulation::parse(&text).unwrap());
        (0..2000u64)
            .map(|i| {
                let dst = if i % 3 == 0 { "10.77.1.5" } else { "10.77.2.5" };
                e.on_send(i * 500, ip(dst), 1000)
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7), run(8));
}

#[test]
fn each_destination_keeps_its_order_under_jitter() {
    let mut e = Emulator::new(with_loss(0.0, 20));
    let mut last = std::collections::HashMap::new();
    let mut raised = 0;
    for i in 0..20_000u64 {
        // Sends 100 µs apart against 20 ms of jitter: without the FIFO rule
        // most would overtake one another.
        let dst = ip(["10.77.2.1", "10.77.2.2", "10.77.1.1"][(i % 3) as usize]);
        let now = i * 100;
        let Verdict::At(due) = e.on_send(now, dst, 1200) else {
            panic!("no loss configured");
        };
        let base = if dst == ip("10.77.1.1") {
            6_000
        } else {
            45_000
        };
        assert!(due >= now + base, "due {due} below the latency at {now}");
        assert!(
            due <= now + base + 20_000,
            "due {due} beyond latency + jitter"
        );
        let prev = last.insert(dst, due).unwrap_or(0);
        assert!(due >= prev, "{dst}: {due} overtook {prev}");
        // Held back to the previous datagram's due time: a fresh jitter draw
        // lands on it exactly only by chance (1 in 20 001).
        if due == prev {
            raised += 1;
        }
    }
    assert!(
        raised > 1000,
        "the FIFO rule was exercised {raised} times only"
    );
}

#[test]
fn loss_fraction_is_close_to_p() {
    for p in [0.05, 0.2, 0.5] {
        let mut e = Emulator::new(with_loss(p, 2));
        let n = 20_000u64;
        let lost = (0..n)
            .filter(|i| e.on_send(i * 10, ip("10.77.2.1"), 1200) == Verdict::Drop)
            .count() as f64;
        let frac = lost / n as f64;
        assert!((frac - p).abs() < 0.02, "p {p}: lost fraction {frac}");
        assert_eq!(e.stats().lost as f64, lost);
    }
}

#[test]
fn a_loss_matrix_applies_per_region_pair() {
    let text = TWO.replace("loss = 0.0", "loss_matrix = [[0.0, 0.5], [0.0, 0.0]]");
    let mut e = Emulator::new(NetEmulation::parse(&text).unwrap());
    let lost_to = |e: &mut Emulator, dst: &str| {
        (0..4000u64)
            .filter(|i| e.on_send(i * 10, ip(dst), 100) == Verdict::Drop)
            .count()
    };
    assert_eq!(lost_to(&mut e, "10.77.1.1"), 0);
    let far = lost_to(&mut e, "10.77.2.1");
    assert!((1700..2300).contains(&far), "{far}");
}

#[test]
fn the_longest_prefix_wins() {
    let text = format!(
        "{TWO}\n[[subnets]]\ncidr = \"10.77.0.0/16\"\nregion = \"us\"\n\
         [[subnets]]\ncidr = \"10.77.1.128/25\"\nregion = \"us\"\n\
         [[subnets]]\ncidr = \"10.77.1.200/32\"\nregion = \"eu\"\n"
    );
    let cfg = NetEmulation::parse(&text).unwrap();
    let (eu, us) = (cfg.regions.id("eu"), cfg.regions.id("us"));
    assert_eq!(cfg.region_of(ip("10.77.1.5")), eu); // /24
    assert_eq!(cfg.region_of(ip("10.77.1.130")), us); // /25 over /24
    assert_eq!(cfg.region_of(ip("10.77.1.200")), eu); // /32 over /25
    assert_eq!(cfg.region_of(ip("10.77.9.1")), us); // /16
    assert_eq!(cfg.region_of(ip("10.78.0.1")), None);
    assert_eq!(cfg.region_of(ip("fd00::1")), None);
}

#[test]
fn cidrs_parse_and_match() {
    let c = Cidr::parse("127.0.0.2/32").unwrap();
    assert!(c.contains(ip("127.0.0.2")));
    assert!(!c.contains(ip("127.0.0.3")));
    let all = Cidr::parse("0.0.0.0/0").unwrap();
    assert!(all.contains(ip("8.8.8.8")));
    assert!(!all.contains(ip("::1")));
    let v6 = Cidr::parse("fd00:77::/32").unwrap();
    assert!(v6.contains(ip("fd00:77::9")));
    assert!(!v6.contains(ip("fd00:78::9")));
    assert!(Cidr::parse("10.0.0.1/24")
        .unwrap_err()
        .contains("host bits"));
    assert!(Cidr::parse("10.0.0.0/33").unwrap_err().contains("0..=32"));
    assert!(Cidr::parse("10.0.0.0").unwrap_err().contains("prefix"));
}

fn err(text: &str) -> String {
    NetEmulation::parse(text).unwrap_err()
}

#[test]
fn a_bad_file_says_what_is_wrong() {
    let e = err(&TWO.replace("10.77.2.0/24", "10.77.2.0/40"));
    assert!(
        e.contains("subnets[1]") && e.contains("10.77.2.0/40"),
        "{e}"
    );
    let e = err(&TWO.replace("10.77.2.0/24", "10.77.x.0/24"));
    assert!(e.contains("not an IP address"), "{e}");

    let e = err(&TWO.replace("region = \"us\"", "region = \"asia\""));
    assert!(e.contains("subnets[1].region") && e.contains("asia"), "{e}");
    let e = err(&TWO.replace("region = \"eu\"\nseed", "region = \"mars\"\nseed"));
    assert!(e.contains("region = \"mars\""), "{e}");

    let e = err(&TWO.replace("[[6, 45], [44, 7]]", "[[6, 45]]"));
    assert!(e.contains("latency.matrix_ms"), "{e}");
    let e = err(&TWO.replace("[[6, 45], [44, 7]]", "[[6, 45], [44]]"));
    assert!(e.contains("row 1"), "{e}");
    let e = err(&TWO.replace("loss = 0.0", "loss = 1.5"));
    assert!(e.contains("network.loss"), "{e}");

    // Unknown keys: toml names the key and the line.
    let e = err(&TWO.replace("jitter_ms = 2", "jitter_ms = 2\njiter = 3"));
    assert!(e.contains("jiter") && e.contains("line 8"), "{e}");
    let e = err(&format!("{TWO}\n[extra]\nx = 1\n"));
    assert!(e.contains("extra"), "{e}");
    let e = err("region = \"eu\"\n");
    assert!(e.contains("latency"), "{e}");
}

#[test]
fn load_names_the_file() {
    let dir = std::env::temp_dir().join(format!("tiercast-emu-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(&path, TWO.replace("10.77.2.0/24", "nonsense")).unwrap();
    let e = NetEmulation::load(&path).unwrap_err().to_string();
    assert!(e.contains("bad.toml") && e.contains("nonsense"), "{e}");
    let e = NetEmulation::load(&dir.join("missing.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("missing.toml") && e.contains("cannot read"),
        "{e}"
    );
    std::fs::write(&path, TWO).unwrap();
    assert!(NetEmulation::load(&path).is_ok());
    std::fs::remove_dir_all(&dir).unwrap();
}
