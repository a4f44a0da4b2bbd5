//! The scenario format (X5): every shipped scenario parses and validates; unknown
//! fields are refused with their name; bad values are refused naming the field.

use std::path::Path;
use tiercast_sim::Scenario;

const MINIMAL: &str = r#"
name = "m"
seed = 1
duration_s = 10
data_plane = "rate"
[stream]
rate_kbps = 1000
[[node_classes]]
name = "S"
role = "origin"
capacity = 4
uplink_kbps = { kind = "fixed", value = 10000 }
[[node_classes]]
name = "P"
role = "relay"
tier = 1
count = 2
capacity = 4
uplink_kbps = { kind = "fixed", value = 10000 }
"#;

fn err(text: &str) -> String {
    Scenario::from_toml(text).unwrap_err().to_string()
}

#[test]
fn shipped_scenarios_are_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            Scenario::from_file(&p).unwrap_or_else(|e| panic!("{e}"));
            n += 1;
        }
    }
    assert!(n >= 8, "{n} scenarios");
}

#[test]
fn defaults_fill_the_rest() {
    let sc = Scenario::from_toml(MINIMAL).unwrap();
    assert_eq!(sc.stream.block_bytes, 16384);
    assert_eq!(sc.regions.len(), 1);
    assert_eq!(sc.strategy.heartbeat_interval_ms, 1000);
    assert_eq!(sc.viewers.buffer_blocks, 8);
    assert_eq!(sc.network.link_timeout_ms, 10_000);
}

#[test]
fn unknown_fields_are_named() {
    let e = err(&MINIMAL.replace("seed = 1", "seed = 1\nsede = 2"));
    assert!(e.contains("sede"), "{e}");
    let e = err(&MINIMAL.replace("[stream]", "[stream]\nrate = 3"));
    assert!(e.contains("rate"), "{e}");
    let e = err(&format!(
        "{MINIMAL}\n[[faults]]\nkind = \"crash\"\nnodes = [\"P1\"]\nat = 3\n"
    ));
    assert!(e.contains("at"), "{e}");
    let e = err(&format!(
        "{MINIMAL}\n[[arrivals]]\nkind = \"stampede\"\ncount = 3\n"
    ));
    assert!(e.contains("stampede"), "{e}");
}

#[test]
fn bad_values_name_the_field() {
    let cases = [
        (
            MINIMAL.replace("duration_s = 10", "duration_s = -1"),
            "duration_s",
        ),
        (
            MINIMAL.replace("rate_kbps = 1000", "rate_kbps = 0"),
            "stream.rate_kbps",
        ),
        (
            MINIMAL.replace("count = 2\ncapacity = 4", "count = 2\ncapacity = 0"),
            "node_classes[1].capacity",
        ),
        (
            MINIMAL.replace("tier = 1", "tier = 0"),
            "node_classes[1].tier",
        ),
        (
            MINIMAL.replace(
                "count = 2\ncapacity = 4",
                "count = 2\ncapacity = 4\nregion = \"mars\"",
            ),
            "node_classes[1].region",
        ),
        (
            format!("{MINIMAL}\n[[arrivals]]\nkind = \"flash_crowd\"\ncount = 5\nstart_s = 20\n"),
            "arrivals[0].start_s",
        ),
        (
            format!("{MINIMAL}\n[[faults]]\nkind = \"crash\"\nnodes = [\"Q7\"]\nat_s = 3\n"),
            "faults[0].nodes",
        ),
        (
            format!("{MINIMAL}\n[strategy]\nparents_per_relay = 0\n"),
            "strategy.parents_per_relay",
        ),
        (
            format!("{MINIMAL}\n[strategy]\nheartbeat_timeout_ms = 500\n"),
            "strategy.heartbeat_timeout_ms",
        ),
        (
            MINIMAL.replace(
                "uplink_kbps = { kind = \"fixed\", value = 10000 }\n[[node_classes]]",
                "uplink_kbps = { kind = \"uniform\", min = 9, max = 1 }\n[[node_classes]]",
            ),
            "node_classes[0].uplink_kbps",
        ),
        (
            // The peers' playout stage (issue 13) cannot wait 0 ms behind a gap.
            format!(
                "{}\n[viewers]\nrole = \"peer\"\n",
                MINIMAL.replace(
                    "data_plane = \"rate\"",
                    "data_plane = \"blocks\"\nplayout_deadline_ms = 0"
                )
            ),
            "playout_deadline_ms",
        ),
    ];
    for (text, field) in cases {
        let e = err(&text);
        assert!(
            e.starts_with(field),
            "expected an error about {field}, got: {e}"
        );
    }
}
