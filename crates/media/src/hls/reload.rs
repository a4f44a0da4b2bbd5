//! Blocking playlist reload and media lookup (X2, LL-HLS; X3: bounded,
//! clear refusals). The decisions only: whether a playlist request with
//! `_HLS_msn` / `_HLS_part` can be answered now, must wait, or asks too far
//! ahead; whether a segment or part is here, coming (the preload hint), or
//! not here. The driver parks a waiting request (bounded) and asks again.

use bytes::Bytes;

use super::segmenter::Segmenter;

/// Highest `_HLS_part` / part index taken seriously.
pub const MAX_PART_INDEX: u64 = 1_000;

/// What to do with a playlist request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// Answer with the playlist now.
    Ready,
    /// Hold the request until the segmenter changes (bounded by the driver).
    Wait,
    /// `400` with this reason.
    Refuse(String),
}

/// Whether a playlist request for `_HLS_msn=msn` and `_HLS_part=part` can be
/// answered. Without `msn`, it waits only for the first complete segment.
pub fn playlist_readiness(seg: &Segmenter, msn: Option<u64>, part: Option<u64>) -> Readiness {
    let last = seg.last_complete_msn();
    let Some(msn) = msn else {
        if part.is_some() {
            return Readiness::Refuse("_HLS_part needs _HLS_msn".into());
        }
        return if last.is_some() {
            Readiness::Ready
        } else {
            Readiness::Wait
        };
    };
    let (open_msn, closed_parts) = seg.next_part();
    // RFC 8216bis 6.2.5.2: more than two segments past the playlist's last is a 400.
    let newest = last.unwrap_or(open_msn.saturating_sub(1));
    if msn > newest.saturating_add(2) {
        return Readiness::Refuse(format!(
            "_HLS_msn {msn} is too far ahead: the newest segment is {newest}"
        ));
    }
    if part.is_some_and(|p| p > MAX_PART_INDEX) {
        return Readiness::Refuse(format!("_HLS_part above {MAX_PART_INDEX}"));
    }
    if last.is_some_and(|l| l >= msn) {
        return Readiness::Ready;
    }
    match part {
        Some(p) if msn == open_msn && (p as usize) < closed_parts => Readiness::Ready,
        _ => Readiness::Wait,
    }
}

/// What to answer to a request for a segment or a part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MediaAnswer {
    Found(Bytes),
    /// The part the preload hint names, or the segment being filled: wait for it.
    Wait,
    /// `404` with this reason.
    NotHere(String),
}

/// Looks up segment `msn` or, with `part`, that part of it.
pub fn lookup_media(seg: &Segmenter, msn: u64, part: Option<u64>) -> MediaAnswer {
    if let Some(s) = seg.segments().iter().find(|s| s.msn == msn) {
        return match part {
            None => MediaAnswer::Found(s.bytes.clone()),
            Some(p) => match s.parts.get(p as usize) {
                Some(found) if p <= MAX_PART_INDEX => MediaAnswer::Found(found.bytes.clone()),
                _ => MediaAnswer::NotHere(format!("segment {msn} has no part {p}")),
            },
        };
    }
    let (open_msn, closed_parts) = seg.next_part();
    if msn == open_msn {
        return match part {
            None => MediaAnswer::Wait,
            Some(p) if (p as usize) < closed_parts => match seg.open() {
                Some(open) => MediaAnswer::Found(open.parts[p as usize].bytes.clone()),
                None => MediaAnswer::NotHere(format!("part {msn}.{p} is not here")),
            },
            Some(p) if p as usize == closed_parts => MediaAnswer::Wait,
            Some(p) => MediaAnswer::NotHere(format!("part {msn}.{p} is not the next part")),
        };
    }
    let oldest = seg.media_sequence();
    if msn < oldest {
        MediaAnswer::NotHere(format!(
            "segment {msn} left the window (oldest is {oldest})"
        ))
    } else {
        MediaAnswer::NotHere(format!("segment {msn} does not exist yet"))
    }
}
