//! The feed an HTTP viewer is sent to (C3's `delayed_feed` and `audio_fallback`,
//! `van/watch_feed.rs`) on the real machines over the zero-latency bus: the delay
//! of the strictest rule rides on every grant; when the only relay has no room
//! for another full-feed viewer, a viewer an `audio_fallback` rule covers is sent
//! to that relay's audio-only feed instead of being refused, and without the rule
//! it is refused (`TierFull`) as before.

mod support;

use support::Bus;
use tiercast_coordinator::{CoordEvent, CoordinatorConfig};
use tiercast_node::NodeConfig;
use tiercast_proto::viewer_feed::{FeedKind, ViewerFeed};
use tiercast_proto::{DenyReason, NodeId, NodeRole};

const DELAY_AND_AUDIO: &str = r#"
[[provider.delayed_feed]]
name = "free-delay"
channels = ["live"]
viewers = "free"
delay_s = 30

[[provider.audio_fallback]]
name = "audio-for-free"
channels = ["live"]
viewers = "free"
"#;

/// An origin and one relay with room for two viewers, channel "live" announced.
fn cluster() -> Bus {
    let mut bus = Bus::new(CoordinatorConfig::default());
    bus.add_node(1, NodeRole::Origin, 0, 100, 0);
    bus.add_node_with(NodeConfig {
        id: NodeId(11),
        role: NodeRole::Relay,
        tier: 1,
        capacity: 2,
        min_threshold: 1,
        addr: "sim:11".into(),
        http_addr: "sim:11".into(),
        ..NodeConfig::default()
    });
    bus.node(1).announce("live", [0; 32]);
    bus.settle();
    bus
}

#[test]
fn the_policy_delay_rides_on_the_grant_and_a_full_tier_falls_back_to_audio() {
    let mut bus = cluster();
    let now = bus.now;
    assert_eq!(bus.coordinator.apply_policies(now, DELAY_AND_AUDIO), Ok(2));
    let c = &mut bus.coordinator;
    for _ in 0..2 {
        let g = c
            .watch_feed(now, "live", "", ViewerFeed::LIVE)
            .expect("room");
        assert_eq!(
            g.feed,
            ViewerFeed {
                kind: FeedKind::Full,
                delay_s: 30
            }
        );
        assert_eq!(g.relay.id, NodeId(11));
        assert_eq!(g.relay_path(), "/live/live.ts?delay=30");
        assert!(!g.audio_fallback);
    }
    // The relay is full: the audio-only feed, still delayed, on the same relay.
    let g = c
        .watch_feed(now, "live", "", ViewerFeed::LIVE)
        .expect("audio instead");
    assert!(g.audio_fallback);
    assert_eq!(
        g.feed,
        ViewerFeed {
            kind: FeedKind::Audio,
            delay_s: 30
        }
    );
    assert_eq!(g.relay_path(), "/live/live.ts?feed=audio&delay=30");
    let fell_back = std::iter::from_fn(|| c.poll_event())
        .any(|e| matches!(e, CoordEvent::AudioFallback { to, .. } if to.0 == 11));
    assert!(fell_back, "the fall-back is an event");
    // A viewer asking a longer delay than the rule keeps its own.
    let asked = ViewerFeed {
        kind: FeedKind::Audio,
        delay_s: 45,
    };
    let g = c.watch_feed(now, "live", "", asked).expect("audio asked");
    assert_eq!(g.feed.delay_s, 45);
    assert!(!g.audio_fallback);
    assert_eq!(
        c.watch_feed(now, "nope", "", ViewerFeed::LIVE).unwrap_err(),
        DenyReason::UnknownChannel
    );
}

#[test]
fn without_an_audio_rule_a_full_tier_is_refused() {
    let mut bus = cluster();
    let now = bus.now;
    let delay_only = DELAY_AND_AUDIO
        .split("[[provider.audio_fallback]]")
        .next()
        .unwrap();
    assert_eq!(bus.coordinator.apply_policies(now, delay_only), Ok(1));
    let c = &mut bus.coordinator;
    c.watch_feed(now, "live", "", ViewerFeed::LIVE)
        .expect("room 1");
    c.watch_feed(now, "live", "", ViewerFeed::LIVE)
        .expect("room 2");
    assert_eq!(
        c.watch_feed(now, "live", "", ViewerFeed::LIVE).unwrap_err(),
        DenyReason::TierFull
    );
    // No rules at all: live, full feed.
    assert_eq!(bus.coordinator.apply_policies(now, ""), Ok(0));
    let g = bus
        .coordinator
        .watch_feed(now, "live", "", ViewerFeed::LIVE);
    assert!(matches!(g, Err(DenyReason::TierFull)), "still full: {g:?}");
}
