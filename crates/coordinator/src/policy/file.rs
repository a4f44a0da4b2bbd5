//! The operators' policy file (C3): the TOML schema, read with serde. Every table
//! refuses unknown keys; the values a check must point at (names, caps, hours,
//! fall-backs) keep their place in the file (`Spanned`), so a refusal names the
//! line. `docs/POLICIES.md` documents every field.
//!
//! Three sections, one array of tables per kind of rule:
//! - `[[network.*]]`: `link_cap`, `traffic_budget`, `prefer_peering`;
//! - `[[provider.*]]`: `premium_first`, `audio_fallback`, `geo_block`,
//!   `delayed_feed`, `prefer_source`;
//! - `[[client.*]]`: `no_relay_hours`, `device_class`, `content_category`,
//!   `affinity`.
//!
//! and `[categories]`: content category → the channels in it.
//!
//! Every rule has a unique `name`, a `strictness` (1 loosest … 10 strictest;
//! stricter rules are applied first and win a conflict), an optional `fallback`
//! (the rule applied in its place when this one would leave a viewer with no
//! parent) and `viewers` (`all`, `premium` or `free`: whom it applies to).

use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

/// A name as written in the file, with its place.
pub type Name = Spanned<String>;

/// Whom a rule applies to (the viewer's class comes from its token).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ViewerClass {
    #[default]
    All,
    Premium,
    Free,
}

impl ViewerClass {
    /// Whether a rule for `self` applies to a viewer of `class`.
    pub fn covers(self, class: ViewerClass) -> bool {
        self == ViewerClass::All || self == class
    }
}

/// Where viewers should take the stream from.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Relays (the operator's servers).
    Servers,
    /// Other viewers' uplinks (the peer overlay).
    Peers,
}

/// The period a traffic budget counts over, from its start (month-to-date…).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Day,
    Week,
    Month,
}

/// Whether the members of an affinity group should, or must not, feed each other.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AffinityMode {
    Should,
    MustNot,
}

/// What a device class may not do.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DeviceDeny {
    /// It never relays (feeds no other node).
    Relay,
    /// It may not watch at all.
    Watch,
}

fn default_strictness() -> Spanned<i64> {
    Spanned::new(0..0, 5)
}

/// Declares a rule struct with the fields every rule has.
macro_rules! rule {
    ($(#[$m:meta])* $kind:ident { $($(#[$fm:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $kind {
            /// Unique among all rules; what fall-backs and events name.
            pub name: Name,
            /// 1 (loosest) ..= 10 (strictest); 5 when not given.
            #[serde(default = "default_strictness")]
            pub strictness: Spanned<i64>,
            /// The rule applied instead when this one would leave a viewer with nothing.
            #[serde(default)]
            pub fallback: Option<Name>,
            #[serde(default)]
            pub viewers: ViewerClass,
            $($(#[$fm])* pub $field: $ty,)*
        }
    };
}

rule!(
    /// A cap on a link: between two regions (`regions`) or two nodes (`nodes`).
    LinkCap {
        #[serde(default)]
        regions: Option<Spanned<Vec<Name>>>,
        #[serde(default)]
        nodes: Option<Spanned<Vec<u32>>>,
        cap_mbps: Spanned<f64>,
    }
);

rule!(
    /// Traffic over a period: below `threshold_gb` prefer `below`, above it `above`.
    TrafficBudget {
        period: Period,
        threshold_gb: Spanned<f64>,
        below: Source,
        above: Source,
    }
);

rule!(
    /// Prefer parents across these region pairs (settlement-free peering links).
    PreferPeering {
        pairs: Vec<Spanned<Vec<Name>>>,
    }
);

rule!(
    /// Premium viewers are served first; with `preempt` one may take a free
    /// viewer's parent when nothing else is left.
    PremiumFirst {
        #[serde(default)]
        channels: Vec<Name>,
        #[serde(default)]
        preempt: bool,
    }
);

rule!(
    /// Audio before video: those who cannot get the full feed get the audio-only one.
    AudioFallback {
        #[serde(default)]
        channels: Vec<Name>,
    }
);

rule!(
    /// Viewers in these regions are refused these channels (all when empty).
    GeoBlock {
        regions: Vec<Name>,
        #[serde(default)]
        channels: Vec<Name>,
        /// Told to the refused viewer (HTTP 451 body).
        reason: String,
    }
);

rule!(
    /// The feed `delay_s` seconds behind live (from the relays' buffers).
    DelayedFeed {
        #[serde(default)]
        channels: Vec<Name>,
        delay_s: Spanned<i64>,
    }
);

rule!(
    /// Prefer servers or peers for these channels (all when empty).
    PreferSource {
        #[serde(default)]
        channels: Vec<Name>,
        prefer: Source,
    }
);

rule!(
    /// No relaying during `hours` = [start, end) local hours (wraps past
    /// midnight when start > end), at `utc_offset_h`.
    NoRelayHours {
        hours: Spanned<Vec<i64>>,
        #[serde(default)]
        utc_offset_h: Option<Spanned<i64>>,
        /// Device classes it applies to (all when empty).
        #[serde(default)]
        device_classes: Vec<Name>,
    }
);

rule!(
    /// A device class may not relay, or may not watch.
    DeviceClass {
        classes: Vec<Name>,
        deny: DeviceDeny,
    }
);

rule!(
    /// Content in these categories is refused to these device classes and regions.
    ContentCategory {
        categories: Vec<Name>,
        #[serde(default)]
        device_classes: Vec<Name>,
        #[serde(default)]
        regions: Vec<Name>,
    }
);

rule!(
    /// Nodes that should, or must not, feed each other.
    Affinity {
        members: Spanned<Vec<u32>>,
        mode: AffinityMode,
    }
);

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    #[serde(default)]
    pub link_cap: Vec<LinkCap>,
    #[serde(default)]
    pub traffic_budget: Vec<TrafficBudget>,
    #[serde(default)]
    pub prefer_peering: Vec<PreferPeering>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provider {
    #[serde(default)]
    pub premium_first: Vec<PremiumFirst>,
    #[serde(default)]
    pub audio_fallback: Vec<AudioFallback>,
    #[serde(default)]
    pub geo_block: Vec<GeoBlock>,
    #[serde(default)]
    pub delayed_feed: Vec<DelayedFeed>,
    #[serde(default)]
    pub prefer_source: Vec<PreferSource>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Client {
    #[serde(default)]
    pub no_relay_hours: Vec<NoRelayHours>,
    #[serde(default)]
    pub device_class: Vec<DeviceClass>,
    #[serde(default)]
    pub content_category: Vec<ContentCategory>,
    #[serde(default)]
    pub affinity: Vec<Affinity>,
}

/// The whole file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    #[serde(default)]
    pub network: Network,
    #[serde(default)]
    pub provider: Provider,
    #[serde(default)]
    pub client: Client,
    /// Content category → the channels in it.
    #[serde(default)]
    pub categories: BTreeMap<String, Vec<Name>>,
}

/// The fields every rule has, whatever its kind.
pub struct Common<'a> {
    pub kind: &'static str,
    pub name: &'a Name,
    pub strictness: &'a Spanned<i64>,
    pub fallback: Option<&'a Name>,
    pub viewers: ViewerClass,
}

macro_rules! commons {
    ($self:ident, $out:ident, $($section:ident . $kind:ident),*) => {
        $(for r in &$self.$section.$kind {
            $out.push(Common {
                kind: concat!(stringify!($section), ".", stringify!($kind)),
                name: &r.name,
                strictness: &r.strictness,
                fallback: r.fallback.as_ref(),
                viewers: r.viewers,
            });
        })*
    };
}

impl PolicyFile {
    /// Every rule's common fields, in file section order.
    pub fn rules(&self) -> Vec<Common<'_>> {
        let mut out = Vec::new();
        commons!(
            self,
            out,
            network.link_cap,
            network.traffic_budget,
            network.prefer_peering,
            provider.premium_first,
            provider.audio_fallback,
            provider.geo_block,
            provider.delayed_feed,
            provider.prefer_source,
            client.no_relay_hours,
            client.device_class,
            client.content_category,
            client.affinity
        );
        out
    }
}
