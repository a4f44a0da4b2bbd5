//! What an HTTP viewer asks for beyond the channel (C3's provider rules "audio
//! before video" and "a time-delayed feed"): `feed=full|audio` and `delay=SECONDS`
//! in the query of `/live/<channel>.ts` (a relay) or `/watch/<channel>` (the
//! coordinator). Parsed here once, for both, with a clear reason for bad input;
//! written back by [`ViewerFeed::query`] when the coordinator redirects.
//!
//! Not a message: nothing here crosses a node link (message sizes are unchanged).

use std::fmt;

/// Longest delay a query may ask for (the policy file's bound for `delay_s`).
pub const MAX_DELAY_S: u32 = 3600;

/// Which elementary streams a viewer gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FeedKind {
    /// The channel's TS as the origin cut it.
    #[default]
    Full,
    /// Only the audio PIDs (PAT kept, PMT rewritten).
    Audio,
}

impl FeedKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FeedKind::Full => "full",
            FeedKind::Audio => "audio",
        }
    }
}

/// The feed an HTTP viewer watches: which streams, how far behind live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ViewerFeed {
    pub kind: FeedKind,
    /// Seconds behind live; 0 is live.
    pub delay_s: u32,
}

/// Why a query's `feed=` or `delay=` was refused (HTTP 400 with this text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedParamError {
    UnknownFeed(String),
    BadDelay(String),
}

impl fmt::Display for FeedParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FeedParamError::UnknownFeed(v) => {
                write!(f, "unknown feed {v:?}: use feed=full or feed=audio")
            }
            FeedParamError::BadDelay(v) => write!(
                f,
                "invalid delay {v:?}: use delay=SECONDS, a whole number 0..={MAX_DELAY_S}"
            ),
        }
    }
}

impl std::error::Error for FeedParamError {}

impl ViewerFeed {
    pub const LIVE: ViewerFeed = ViewerFeed {
        kind: FeedKind::Full,
        delay_s: 0,
    };

    /// Reads `feed=` and `delay=` (each absent or empty: the default).
    pub fn from_params(feed: Option<&str>, delay: Option<&str>) -> Result<Self, FeedParamError> {
        let kind = match feed {
            None | Some("") | Some("full") => FeedKind::Full,
            Some("audio") => FeedKind::Audio,
            Some(other) => {
                return Err(FeedParamError::UnknownFeed(
                    other.chars().take(32).collect(),
                ))
            }
        };
        let delay_s = match delay {
            None | Some("") => 0,
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|d| *d <= MAX_DELAY_S && v.len() <= 5)
                .ok_or_else(|| FeedParamError::BadDelay(v.chars().take(32).collect()))?,
        };
        Ok(ViewerFeed { kind, delay_s })
    }

    pub fn is_live_full(&self) -> bool {
        *self == Self::LIVE
    }

    /// The query that asks for this feed (`""` for the live full feed), e.g.
    /// `?feed=audio&delay=30`.
    pub fn query(&self) -> String {
        let mut parts = Vec::new();
        if self.kind != FeedKind::Full {
            parts.push(format!("feed={}", self.kind.as_str()));
        }
        if self.delay_s > 0 {
            parts.push(format!("delay={}", self.delay_s));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("?{}", parts.join("&"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_writes_back() {
        let f = ViewerFeed::from_params(Some("audio"), Some("30")).unwrap();
        assert_eq!(
            f,
            ViewerFeed {
                kind: FeedKind::Audio,
                delay_s: 30
            }
        );
        assert_eq!(f.query(), "?feed=audio&delay=30");
        let back = ViewerFeed::from_params(Some("audio"), Some("30")).unwrap();
        assert_eq!(back, f);
        assert_eq!(ViewerFeed::from_params(None, None).unwrap().query(), "");
        assert_eq!(
            ViewerFeed::from_params(Some("full"), Some("")).unwrap(),
            ViewerFeed::LIVE
        );
        let delayed = ViewerFeed::from_params(None, Some("5")).unwrap();
        assert_eq!(delayed.query(), "?delay=5");
    }

    #[test]
    fn refuses_bad_values_with_the_reason() {
        let e = ViewerFeed::from_params(Some("video"), None).unwrap_err();
        assert!(e.to_string().contains("feed=full or feed=audio"), "{e}");
        for bad in ["-1", "3601", "1.5", "ten", "000000001", "99999999999"] {
            let e = ViewerFeed::from_params(None, Some(bad)).unwrap_err();
            assert!(matches!(e, FeedParamError::BadDelay(_)), "{bad}");
        }
        assert_eq!(
            ViewerFeed::from_params(None, Some("3600")).unwrap().delay_s,
            3600
        );
    }
}
