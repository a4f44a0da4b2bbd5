//! C9 through the simulator: two channels from one origin, strong peers on
//! both (`scenarios/shared/lending-{on,off}.toml`, shrunk to 60 s). With the
//! static split the busy channel cannot carry every peer; with lending the idle
//! channel's unused share carries them, the idle channel loses nothing, and
//! no uplink queue overflows (booked once). A scenario with one channel has no
//! `channels` in its metrics; a bad second channel is refused by name.
mod support;

use tiercast_sim::Scenario;

fn scenario(file: &str) -> String {
    support::scenario_text("shared", file).replace("duration_s = 90", "duration_s = 60")
}

fn run(text: &str) -> serde_json::Value {
    support::metrics_json(text)
}

fn continuity(m: &serde_json::Value, i: usize) -> f64 {
    m["channels"][i]["continuity_index"]
        .as_f64()
        .expect("continuity")
}

#[test]
fn an_idle_channel_lends_its_share_and_the_busy_one_carries_every_peer() {
    let on = run(&scenario("lending-on.toml"));
    let off = run(&scenario("lending-off.toml"));
    for (name, m) in [("on", &on), ("off", &off)] {
        eprintln!(
            "{name}: live {:.4} side {:.4}, lent {} bit/s, not carried {}",
            continuity(m, 0),
            continuity(m, 1),
            m["channels"][1]["uplink_lent_bps_end"],
            m["peers"]["not_carried_at_end"]
        );
        assert_eq!(m["channels"][0]["channel"], "live");
        assert_eq!(m["channels"][1]["channel"], "side");
        assert_eq!(m["channels"][1]["viewers"], 40);
        assert!(
            continuity(m, 1) >= 0.999,
            "{name}: side keeps its peers fed"
        );
        assert_eq!(m["dropped"]["queue_full"], 0, "{name}: booked once");
        assert_eq!(m["invariant_violation_count"], 0, "{name}");
    }
    assert_eq!(off["channels"][1]["uplink_lent_bps_end"], 0);
    assert!(on["channels"][1]["uplink_lent_bps_end"].as_u64().unwrap() > 0);
    assert!(continuity(&on, 0) >= 0.995, "lending carries live");
    assert!(
        continuity(&on, 0) > continuity(&off, 0) + 0.05,
        "and it takes lending"
    );
    assert_eq!(on["peers"]["not_carried_at_end"], 0);
}

#[test]
fn one_channel_has_no_channel_figures_and_a_bad_second_channel_is_named() {
    let one = scenario("lending-on.toml")
        .replace("[second_stream]\nchannel = \"side\"\n", "")
        .replace("both_channels = true\n", "")
        .replace("count = 200", "count = 20");
    let m = run(&one);
    assert!(
        m.get("channels").is_none(),
        "no `channels` with one channel"
    );
    let same = scenario("lending-on.toml").replace("channel = \"side\"", "channel = \"live\"");
    let err = Scenario::from_toml(&same).expect_err("refused");
    assert!(err.to_string().contains("second_stream.channel"), "{err}");
    let orphan = scenario("lending-on.toml").replace("[second_stream]\nchannel = \"side\"\n", "");
    let err = Scenario::from_toml(&orphan).expect_err("refused");
    assert!(err.to_string().contains("both_channels"), "{err}");
}
