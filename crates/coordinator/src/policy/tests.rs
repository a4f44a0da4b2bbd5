//! The policy file (C3): every kind parses, every bad input is refused with its
//! line, and each kind's question answers as its rule says.

use super::*;
use std::collections::BTreeSet;

const EXAMPLE: &str = include_str!("../../../../scenarios/policies/example.toml");

fn set(names: &[&str]) -> Option<BTreeSet<String>> {
    Some(names.iter().map(|s| s.to_string()).collect())
}

fn known() -> Known {
    Known {
        regions: set(&["eu-west", "eu-central", "us-east", "cn"]),
        channels: set(&["match", "concert", "late-show"]),
    }
}

fn ok(src: &str) -> Policies {
    check(src, &known()).unwrap_or_else(|e| panic!("{e}"))
}

/// The refusal's line, and that its reason contains `why`.
fn refused(src: &str, why: &str) -> usize {
    let e = match check(src, &known()) {
        Ok(p) => panic!("accepted ({} rules)", p.rule_count()),
        Err(e) => e,
    };
    assert!(
        e.reason.contains(why),
        "reason {:?} lacks {why:?}",
        e.reason
    );
    e.line
}

#[test]
fn the_example_file_passes_and_has_every_kind() {
    let p = ok(EXAMPLE);
    assert_eq!(p.rule_count(), 15);
    let kinds: BTreeSet<&str> = p.by_strictness().iter().map(|r| r.kind).collect();
    assert_eq!(kinds.len(), 12, "{kinds:?}");
    let ranked = p.by_strictness();
    assert_eq!(ranked[0].name, "match-rights", "strictest first");
    assert_eq!(ranked[0].strictness, 10);
    // Without the lists, names are not checked.
    assert!(check(EXAMPLE, &Known::default()).is_ok());
}

#[test]
fn an_empty_file_is_no_rules() {
    assert_eq!(ok("").rule_count(), 0);
    assert_eq!(ok("# nothing\n").rule_count(), 0);
}

#[test]
fn a_file_that_does_not_parse_is_refused_with_its_line() {
    assert_eq!(refused("[categories]\nsports = [\"match\"\n", ""), 3);
    assert_eq!(refused("\n\nnot toml at all\n", ""), 3);
}

#[test]
fn an_unknown_key_is_refused_with_its_line() {
    let src = "[[network.link_cap]]\nname = \"a\"\nregions = [\"eu-west\", \"us-east\"]\ncap_mbps = 10\nburst = 5\n";
    assert_eq!(refused(src, "unknown field `burst`"), 5);
    let src = "\n[[network.link_kap]]\nname = \"a\"\n";
    assert_eq!(refused(src, "unknown field `link_kap`"), 2);
    assert_eq!(refused("colour = 1\n", "unknown field `colour`"), 1);
}

#[test]
fn a_wrong_type_is_refused_with_its_line() {
    let src = "[[provider.delayed_feed]]\nname = \"d\"\ndelay_s = \"thirty\"\n";
    assert_eq!(refused(src, "invalid type"), 3);
    let src = "[[provider.prefer_source]]\nname = \"p\"\n\nprefer = \"satellites\"\n";
    assert_eq!(refused(src, "unknown variant"), 4);
}

#[test]
fn a_negative_or_zero_cap_is_refused_with_its_line() {
    let src =
        "[[network.link_cap]]\nname = \"a\"\nregions = [\"eu-west\", \"us-east\"]\ncap_mbps = -5\n";
    assert_eq!(refused(src, "cap_mbps must be a positive number"), 4);
    let src = "[[network.link_cap]]\nname = \"a\"\nnodes = [1, 2]\ncap_mbps = 0.0\n";
    assert_eq!(refused(src, "positive"), 4);
    let src = "[[network.link_cap]]\nname = \"a\"\nnodes = [1, 2]\ncap_mbps = nan\n";
    assert_eq!(refused(src, "positive"), 4);
    let src = "[[network.traffic_budget]]\nname = \"t\"\nperiod = \"month\"\nthreshold_gb = -1\nbelow = \"servers\"\nabove = \"peers\"\n";
    assert_eq!(refused(src, "threshold_gb"), 4);
}

#[test]
fn an_unknown_region_is_refused_with_its_line() {
    let src = "[[provider.geo_block]]\nname = \"g\"\nregions = [\n  \"cn\",\n  \"atlantis\",\n]\nreason = \"no\"\n";
    assert_eq!(refused(src, "unknown region `atlantis`"), 5);
    let src =
        "[[network.link_cap]]\nname = \"a\"\nregions = [\"eu-west\", \"mars\"]\ncap_mbps = 1\n";
    assert_eq!(refused(src, "unknown region `mars`"), 3);
    let src = "[[network.prefer_peering]]\nname = \"p\"\npairs = [[\"eu-west\", \"eu-west\"]]\n";
    assert_eq!(refused(src, "two distinct regions"), 3);
}

#[test]
fn an_unknown_channel_is_refused_with_its_line() {
    let src = "[[provider.delayed_feed]]\nname = \"d\"\nchannels = [\"match\", \"cup-final\"]\ndelay_s = 30\n";
    assert_eq!(refused(src, "unknown channel `cup-final`"), 3);
    let src = "[categories]\nsports = [\"match\"]\nnews = [\"evening-news\"]\n";
    assert_eq!(refused(src, "unknown channel `evening-news`"), 3);
}

#[test]
fn a_bad_hour_range_is_refused_with_its_line() {
    for hours in [
        "[9, 9]",
        "[25, 3]",
        "[9]",
        "[9, 17, 20]",
        "[-1, 5]",
        "[3, 25]",
    ] {
        let src = format!("[[client.no_relay_hours]]\nname = \"h\"\nhours = {hours}\n");
        assert_eq!(refused(&src, "bad hour range"), 3, "{hours}");
    }
    let src = "[[client.no_relay_hours]]\nname = \"h\"\nhours = [22, 6]\nutc_offset_h = 15\n";
    assert_eq!(refused(src, "utc_offset_h"), 4);
}

#[test]
fn a_device_class_outside_the_fixed_set_is_refused_with_its_line() {
    for (kind, field) in [
        (
            "device_class",
            "classes = [\"mobile\", \"toaster\"]\ndeny = \"relay\"",
        ),
        (
            "no_relay_hours",
            "hours = [9, 17]\ndevice_classes = [\"toaster\"]",
        ),
        (
            "content_category",
            "categories = [\"sports\"]\ndevice_classes = [\"toaster\"]",
        ),
    ] {
        let src = format!(
            "[categories]\nsports = [\"match\"]\n\n[[client.{kind}]]\nname = \"r\"\n{field}\n"
        );
        let line = refused(&src, "unknown device class `toaster`");
        let expected = src
            .lines()
            .position(|l| l.contains("toaster"))
            .expect("named")
            + 1;
        assert_eq!(line, expected, "{kind}");
    }
    for d in tiercast_proto::DeviceClass::ALL {
        let src = format!(
            "[[client.device_class]]\nname = \"r\"\nclasses = [\"{}\"]\ndeny = \"relay\"\n",
            d.name()
        );
        ok(&src);
    }
}

#[test]
fn a_fallback_naming_a_missing_rule_is_refused_with_its_line() {
    let src =
        "[[network.link_cap]]\nname = \"a\"\nnodes = [1, 2]\ncap_mbps = 1\nfallback = \"b\"\n";
    assert_eq!(refused(src, "fallback `b`: no such rule"), 5);
}

#[test]
fn bad_fallbacks_and_names_are_refused_with_their_line() {
    let cap = |name: &str, fb: &str| {
        format!("[[network.link_cap]]\nname = \"{name}\"\nnodes = [1, 2]\ncap_mbps = 1\nfallback = \"{fb}\"\n")
    };
    assert_eq!(refused(&cap("a", "a"), "itself"), 5);
    let cycle = format!("{}{}", cap("a", "b"), cap("b", "a"));
    assert_eq!(refused(&cycle, "cycle"), 5);
    let other_kind = format!(
        "{}[[provider.audio_fallback]]\nname = \"b\"\n",
        cap("a", "b")
    );
    assert_eq!(refused(&other_kind, "not a network.link_cap"), 5);
    let twice = "[[provider.audio_fallback]]\nname = \"x\"\n[[provider.prefer_source]]\nname = \"x\"\nprefer = \"peers\"\n";
    assert_eq!(refused(twice, "defined twice"), 4);
    let strict = "[[provider.audio_fallback]]\nname = \"x\"\nstrictness = 11\n";
    assert_eq!(refused(strict, "strictness"), 3);
}

#[test]
fn other_bad_rules_are_refused_with_their_line() {
    let both = "[[network.link_cap]]\nname = \"a\"\nregions = [\"cn\", \"us-east\"]\nnodes = [1, 2]\ncap_mbps = 1\n";
    assert_eq!(refused(both, "either"), 2);
    let same = "[[network.traffic_budget]]\nname = \"t\"\nperiod = \"day\"\nthreshold_gb = 1\nbelow = \"peers\"\nabove = \"peers\"\n";
    assert_eq!(refused(same, "same source"), 2);
    let delay = "[[provider.delayed_feed]]\nname = \"d\"\ndelay_s = 0\n";
    assert_eq!(refused(delay, "delay_s"), 3);
    let cat =
        "[[client.content_category]]\nname = \"c\"\ncategories = [\"gore\"]\nregions = [\"cn\"]\n";
    assert_eq!(refused(cat, "unknown category `gore`"), 3);
    let group = "[[client.affinity]]\nname = \"g\"\nmembers = [1, 1]\nmode = \"should\"\n";
    assert_eq!(refused(group, "two distinct members"), 3);
}

#[test]
fn link_caps_apply_between_their_regions_and_fall_back_when_declared() {
    let p = ok(EXAMPLE);
    let free = ViewerClass::Free;
    let cap = p
        .region_link_cap("us-east", "eu-west", free)
        .expect("capped either way");
    assert_eq!((cap.rule, cap.mbps), ("transatlantic", 800.0));
    assert!(p.region_link_cap("eu-west", "eu-central", free).is_none());
    // The fall-back is dormant on its own and taken only for premium viewers.
    assert_eq!(p.cap_fallback(&cap, free), None);
    let premium = p
        .cap_fallback(&cap, ViewerClass::Premium)
        .expect("declared");
    assert_eq!(
        (premium.rule, premium.mbps),
        ("transatlantic-premium", 1000.0)
    );
    let node = p.node_link_cap(12, 11, free).expect("node link");
    assert_eq!(node.mbps, 50.5);
    assert!(p.node_link_cap(11, 13, free).is_none());
}

#[test]
fn a_traffic_budget_switches_the_preference_at_its_threshold() {
    let p = ok(EXAMPLE);
    let used = |gb: f64| move |period: Period| if period == Period::Month { gb } else { 0.0 };
    assert_eq!(p.traffic_preference(used(10.0)), Some(Source::Servers));
    assert_eq!(p.traffic_preference(used(50_000.0)), Some(Source::Peers));
    assert_eq!(Policies::none().traffic_preference(used(1e9)), None);
    assert!(p.is_peering("eu-central", "eu-west"));
    assert!(!p.is_peering("eu-west", "us-east"));
}

#[test]
fn provider_rules_answer_per_channel_and_viewer_class() {
    let p = ok(EXAMPLE);
    let (free, premium) = (ViewerClass::Free, ViewerClass::Premium);
    let r = p.geo_blocked("match", "cn", free).expect("blocked");
    assert_eq!(r.rule, "match-rights");
    assert!(r.reason.contains("rights"));
    assert!(p.geo_blocked("concert", "cn", free).is_none());
    assert!(p.geo_blocked("match", "eu-west", premium).is_none());
    assert_eq!(p.premium_first("concert"), Some(true));
    assert!(p.audio_fallback("match", free));
    assert!(!p.audio_fallback("match", premium));
    assert!(!p.audio_fallback("concert", free));
    assert_eq!(p.delay_s("match", free), Some(30));
    assert_eq!(p.delay_s("match", premium), None);
    assert_eq!(p.delay_s("late-show", free), None);
    assert_eq!(p.preferred_source("concert", free), Some(Source::Peers));
    assert_eq!(p.preferred_source("match", free), None);
}

#[test]
fn the_stricter_rule_wins_and_ties_go_to_the_earlier() {
    let src = "[[provider.prefer_source]]\nname = \"a\"\nprefer = \"peers\"\nstrictness = 3\n\
               [[provider.prefer_source]]\nname = \"b\"\nprefer = \"servers\"\nstrictness = 6\n\
               [[provider.prefer_source]]\nname = \"c\"\nprefer = \"peers\"\nstrictness = 6\n";
    assert_eq!(
        ok(src).preferred_source("x", ViewerClass::Free),
        Some(Source::Servers)
    );
}

#[test]
fn relaying_follows_hours_and_device_classes() {
    let p = ok(EXAMPLE);
    // "office-hours": desktops, 9..17 at UTC+1, i.e. 8..16 UTC.
    assert!(p.relay_allowed("desktop", 7));
    assert!(!p.relay_allowed("desktop", 8));
    assert!(!p.relay_allowed("desktop", 15));
    assert!(p.relay_allowed("desktop", 16));
    assert!(p.relay_allowed("tv", 12), "other classes relay");
    assert!(!p.relay_allowed("mobile", 3), "phones never relay");
    let night = ok("[[client.no_relay_hours]]\nname = \"n\"\nhours = [22, 6]\n");
    assert!(!night.relay_allowed("any", 23));
    assert!(!night.relay_allowed("any", 0));
    assert!(night.relay_allowed("any", 6));
    assert!(night.relay_allowed("any", 21));
}

#[test]
fn content_and_device_restrictions_refuse_with_a_reason() {
    let p = ok(EXAMPLE);
    let r = p
        .watch_refused("late-show", "tablet", "eu-west")
        .expect("refused");
    assert_eq!(r.rule, "no-mature-for-kids");
    assert!(r.reason.contains("mature"));
    assert!(p.watch_refused("late-show", "desktop", "eu-west").is_none());
    assert!(p.watch_refused("match", "tablet", "eu-west").is_none());
    let src = "[[client.device_class]]\nname = \"no-tv\"\nclasses = [\"tv\"]\ndeny = \"watch\"\n";
    let r = ok(src).watch_refused("match", "tv", "cn").expect("refused");
    assert_eq!(r.rule, "no-tv");
}

#[test]
fn affinity_groups_say_who_should_and_must_not_feed_whom() {
    let p = ok(EXAMPLE);
    assert_eq!(p.affinity(101, 103), Some(AffinityMode::Should));
    assert_eq!(p.affinity(202, 201), Some(AffinityMode::MustNot));
    assert_eq!(p.affinity(101, 201), None);
    assert_eq!(p.affinity(101, 101), None);
    let both = "[[client.affinity]]\nname = \"a\"\nmembers = [1, 2]\nmode = \"should\"\n\
                [[client.affinity]]\nname = \"b\"\nmembers = [2, 1, 3]\nmode = \"must_not\"\n";
    assert_eq!(ok(both).affinity(1, 2), Some(AffinityMode::MustNot));
}

#[test]
fn outside_input_never_panics() {
    let inputs = [
        "\u{0}",
        "[[",
        "a = ",
        "[network]\nlink_cap = 5\n",
        "[[client.no_relay_hours]]\nname = \"h\"\nhours = [9999999999999999999, 1]\n",
        "[[network.link_cap]]\nname = \"\"\nnodes = [1, 2]\ncap_mbps = 1\n",
        "[categories]\n\"\" = [\"match\"]\n",
    ];
    for src in inputs {
        assert!(check(src, &known()).is_err(), "{src:?}");
    }
}

#[test]
fn the_documented_example_is_the_shipped_one() {
    let doc = include_str!("../../../../docs/POLICIES.md");
    let start = doc.rfind("```toml\n").expect("an example in POLICIES.md") + "```toml\n".len();
    let len = doc[start..].find("```").expect("closed");
    assert_eq!(&doc[start..start + len], EXAMPLE);
}
