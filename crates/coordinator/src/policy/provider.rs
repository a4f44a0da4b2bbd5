//! Provider policies (C3) as pure questions for the parent selection (C4) and the
//! watch answer (C4's reason): geo blocks, premium before free, audio before
//! video, a delayed feed for free viewers, servers or peers preferred.

use super::file::{PreferSource, Source, ViewerClass};
use super::rules::{applies, names_contain, strictest, Policies, Refusal};

impl Policies {
    /// `Some` when a viewer of `class` in `region` may not watch `channel` (HTTP
    /// 451): the strictest active geo block that covers it.
    pub fn geo_blocked(&self, channel: &str, region: &str, class: ViewerClass) -> Option<Refusal> {
        let r = strictest(
            self,
            self.file.provider.geo_block.iter().filter(|r| {
                r.viewers.covers(class)
                    && names_contain(&r.regions, region)
                    && applies(&r.channels, channel)
            }),
            |r| &r.name,
            |r| &r.strictness,
        )?;
        let reason = if r.reason.trim().is_empty() {
            format!("{channel} is not available in {region}")
        } else {
            r.reason.clone()
        };
        Some(Refusal {
            rule: r.name.get_ref().clone(),
            reason,
        })
    }

    /// Whether premium viewers of `channel` are served first, and whether one may
    /// pre-empt a free viewer's parent (`Some(true)`).
    pub fn premium_first(&self, channel: &str) -> Option<bool> {
        strictest(
            self,
            self.file
                .provider
                .premium_first
                .iter()
                .filter(|r| applies(&r.channels, channel)),
            |r| &r.name,
            |r| &r.strictness,
        )
        .map(|r| r.preempt)
    }

    /// Whether a viewer of `class` who cannot get the full feed of `channel` gets
    /// the audio-only one.
    pub fn audio_fallback(&self, channel: &str, class: ViewerClass) -> bool {
        strictest(
            self,
            self.file
                .provider
                .audio_fallback
                .iter()
                .filter(|r| r.viewers.covers(class) && applies(&r.channels, channel)),
            |r| &r.name,
            |r| &r.strictness,
        )
        .is_some()
    }

    /// How far behind live (seconds) a viewer of `class` watches `channel`.
    pub fn delay_s(&self, channel: &str, class: ViewerClass) -> Option<u32> {
        strictest(
            self,
            self.file
                .provider
                .delayed_feed
                .iter()
                .filter(|r| r.viewers.covers(class) && applies(&r.channels, channel)),
            |r| &r.name,
            |r| &r.strictness,
        )
        .map(|r| u32::try_from(*r.delay_s.get_ref()).unwrap_or(0))
    }

    /// Servers or peers preferred for a viewer of `class` of `channel`.
    pub fn preferred_source(&self, channel: &str, class: ViewerClass) -> Option<Source> {
        self.prefer_source_rule(channel, class).map(|r| r.prefer)
    }

    /// The strictest `prefer_source` rule in force for a viewer of `class` of
    /// `channel`.
    pub(crate) fn prefer_source_rule(
        &self,
        channel: &str,
        class: ViewerClass,
    ) -> Option<&PreferSource> {
        strictest(
            self,
            self.file
                .provider
                .prefer_source
                .iter()
                .filter(|r| r.viewers.covers(class) && applies(&r.channels, channel)),
            |r| &r.name,
            |r| &r.strictness,
        )
    }
}
