//! The live media playlist (X2; RFC 8216bis with the LL-HLS tags): the
//! window's segments with their durations, dates and discontinuities, the
//! parts of the newest segments and of the one being filled, and the hint of
//! the next part. URIs are relative: `<msn>.ts` and `<msn>.<part>.ts`.

use std::fmt::Write;

use super::date::iso8601_utc;
use super::segmenter::{Part, Segmenter};

/// `#EXT-X-VERSION`: LL-HLS playlists need 9 for every tag used here.
pub const PLAYLIST_VERSION: u32 = 9;

/// The playlist as served now.
pub fn render_playlist(seg: &Segmenter) -> String {
    let config = seg.config();
    let part_target_s = config.part_target_ms as f64 / 1_000.0;
    let mut out = String::with_capacity(2_048);
    let _ = writeln!(out, "#EXTM3U");
    let _ = writeln!(out, "#EXT-X-VERSION:{PLAYLIST_VERSION}");
    let _ = writeln!(out, "#EXT-X-TARGETDURATION:{}", seg.target_duration_s());
    // Every segment opens with a keyframe block (PAT, PMT, then the keyframe).
    let _ = writeln!(out, "#EXT-X-INDEPENDENT-SEGMENTS");
    let _ = writeln!(
        out,
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={:.3}",
        3.0 * part_target_s
    );
    let _ = writeln!(out, "#EXT-X-PART-INF:PART-TARGET={part_target_s:.3}");
    let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{}", seg.media_sequence());
    let _ = writeln!(
        out,
        "#EXT-X-DISCONTINUITY-SEQUENCE:{}",
        seg.discontinuity_sequence()
    );
    let segments = seg.segments();
    let with_parts_from = segments.len().saturating_sub(config.parts_listed_segments);
    for (i, s) in segments.iter().enumerate() {
        if s.discontinuity {
            let _ = writeln!(out, "#EXT-X-DISCONTINUITY");
        }
        let _ = writeln!(
            out,
            "#EXT-X-PROGRAM-DATE-TIME:{}",
            iso8601_utc(s.start_time_us)
        );
        if i >= with_parts_from {
            write_parts(&mut out, s.msn, &s.parts);
        }
        let _ = writeln!(out, "#EXTINF:{:.3},", s.duration_us as f64 / 1e6);
        let _ = writeln!(out, "{}.ts", s.msn);
    }
    if let Some(open) = seg.open() {
        if !open.parts.is_empty() {
            if open.discontinuity {
                let _ = writeln!(out, "#EXT-X-DISCONTINUITY");
            }
            let _ = writeln!(
                out,
                "#EXT-X-PROGRAM-DATE-TIME:{}",
                iso8601_utc(open.start_time_us)
            );
            write_parts(&mut out, open.msn, &open.parts);
        }
    }
    let (msn, part) = seg.next_part();
    let _ = writeln!(out, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{msn}.{part}.ts\"");
    out
}

fn write_parts(out: &mut String, msn: u64, parts: &[Part]) {
    for (i, p) in parts.iter().enumerate() {
        let independent = if p.independent {
            ",INDEPENDENT=YES"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "#EXT-X-PART:DURATION={:.3},URI=\"{msn}.{i}.ts\"{independent}",
            p.duration_us as f64 / 1e6
        );
    }
}
