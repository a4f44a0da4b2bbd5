//! FLV tag bodies (as RTMP carries them) to MPEG-TS (feature X1, issue 17):
//! H.264 in AVCC form becomes Annex B with an access unit delimiter, and SPS
//! and PPS from the AVC sequence header before every keyframe; AAC raw frames
//! get ADTS headers built from the AudioSpecificConfig. The result goes
//! through [`TsMuxer`]. Pure and sans-IO; every length is checked, nothing
//! here panics on input.
//!
//! Until the first keyframe (after the AVC sequence header) nothing is muxed,
//! so the stream starts where a viewer can.

use crate::ts_mux::{TsMuxer, MAX_ACCESS_UNIT_BYTES};

const CODEC_AVC: u8 = 7;
const SOUND_AAC: u8 = 10;
const AUD: [u8; 6] = [0, 0, 0, 1, 0x09, 0xF0];
const START_CODE: [u8; 4] = [0, 0, 0, 1];

/// Why a tag could not be remuxed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlvError {
    #[error("{0} tag too short ({1} bytes)")]
    TooShort(&'static str, usize),
    #[error("tag of {0} bytes is over the {MAX_ACCESS_UNIT_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("video codec {0} not supported (H.264 only)")]
    UnsupportedVideo(String),
    #[error("audio format {0} not supported (AAC only)")]
    UnsupportedAudio(u8),
    #[error("bad AVC sequence header: {0}")]
    BadAvcConfig(&'static str),
    #[error("bad AAC AudioSpecificConfig: {0}")]
    BadAacConfig(&'static str),
    #[error("NAL unit length {len} runs past the tag ({left} bytes left)")]
    BadNalLength { len: usize, left: usize },
    #[error("H.264 data before the AVC sequence header")]
    NoAvcConfig,
}

/// What the AAC frames need for their ADTS header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AacConfig {
    /// Object type − 1 (0: Main, 1: LC, 2: SSR, 3: LTP).
    pub profile: u8,
    pub frequency_index: u8,
    pub channels: u8,
}

impl AacConfig {
    /// Parses the first two bytes of an AudioSpecificConfig.
    pub fn parse(asc: &[u8]) -> Result<Self, FlvError> {
        if asc.len() < 2 {
            return Err(FlvError::BadAacConfig("shorter than 2 bytes"));
        }
        let object_type = asc[0] >> 3;
        let frequency_index = ((asc[0] & 0x07) << 1) | (asc[1] >> 7);
        let channels = (asc[1] >> 3) & 0x0F;
        if !(1..=4).contains(&object_type) {
            return Err(FlvError::BadAacConfig("object type not 1-4"));
        }
        if frequency_index > 12 {
            return Err(FlvError::BadAacConfig("frequency index over 12"));
        }
        if channels == 0 || channels > 7 {
            return Err(FlvError::BadAacConfig("channel configuration not 1-7"));
        }
        Ok(AacConfig {
            profile: object_type - 1,
            frequency_index,
            channels,
        })
    }

    /// The 7-byte ADTS header of a raw frame of `len` bytes.
    pub fn adts_header(&self, len: usize) -> [u8; 7] {
        let full = (len + 7) as u32;
        [
            0xFF,
            0xF1,
            (self.profile << 6) | (self.frequency_index << 2) | (self.channels >> 2),
            ((self.channels & 3) << 6) | ((full >> 11) as u8 & 0x03),
            (full >> 3) as u8,
            ((full as u8 & 0x07) << 5) | 0x1F,
            0xFC,
        ]
    }
}

/// Counters of the remux.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FlvStats {
    pub video_frames: u64,
    pub keyframes: u64,
    pub audio_frames: u64,
    /// Tags dropped before the first keyframe.
    pub waiting_dropped: u64,
}

/// FLV video/audio tag bodies in, MPEG-TS out.
#[derive(Debug, Clone)]
pub struct FlvToTs {
    /// SPS and PPS in Annex B form, from the AVC sequence header.
    parameter_sets: Option<Vec<u8>>,
    nal_length_size: usize,
    aac: Option<AacConfig>,
    mux: TsMuxer,
    started: bool,
    stats: FlvStats,
}

impl Default for FlvToTs {
    fn default() -> Self {
        Self::new()
    }
}

impl FlvToTs {
    pub fn new() -> Self {
        FlvToTs {
            parameter_sets: None,
            nal_length_size: 4,
            aac: None,
            mux: TsMuxer::new(false),
            started: false,
            stats: FlvStats::default(),
        }
    }

    pub fn stats(&self) -> FlvStats {
        self.stats
    }

    /// A video tag body (VIDEODATA) at `ts_ms`; TS packets are appended to `out`.
    pub fn video(&mut self, ts_ms: u64, tag: &[u8], out: &mut Vec<u8>) -> Result<(), FlvError> {
        if tag.len() > MAX_ACCESS_UNIT_BYTES {
            return Err(FlvError::TooLarge(tag.len()));
        }
        let Some(&first) = tag.first() else {
            return Err(FlvError::TooShort("video", 0));
        };
        if first & 0x80 != 0 {
            let fourcc = tag
                .get(1..5)
                .map(|f| String::from_utf8_lossy(f).into_owned());
            return Err(FlvError::UnsupportedVideo(format!(
                "enhanced RTMP {}",
                fourcc.unwrap_or_default()
            )));
        }
        let frame_type = first >> 4;
        let codec = first & 0x0F;
        if codec != CODEC_AVC {
            return Err(FlvError::UnsupportedVideo(format!("id {codec}")));
        }
        if frame_type == 5 {
            return Ok(()); // video info/command frame: nothing to decode
        }
        if tag.len() < 5 {
            return Err(FlvError::TooShort("video", tag.len()));
        }
        let packet_type = tag[1];
        let cts = i32::from_be_bytes([0, tag[2], tag[3], tag[4]]);
        let cts = (cts << 8) >> 8; // sign-extend the 24-bit field
        let body = &tag[5..];
        match packet_type {
            0 => self.avc_config(body),
            1 => {
                let keyframe = frame_type == 1;
                if !self.started && !keyframe {
                    self.stats.waiting_dropped += 1;
                    return Ok(());
                }
                let Some(sets) = &self.parameter_sets else {
                    return Err(FlvError::NoAvcConfig);
                };
                let mut annex_b = Vec::with_capacity(body.len() + sets.len() + 16);
                annex_b.extend_from_slice(&AUD);
                if keyframe {
                    annex_b.extend_from_slice(sets);
                }
                self.nal_units_to_annex_b(body, &mut annex_b)?;
                if !self.started {
                    self.started = true;
                    self.mux.set_audio(self.aac.is_some());
                }
                self.mux
                    .write_video(ts_ms, i64::from(cts), keyframe, &annex_b, out);
                self.stats.video_frames += 1;
                self.stats.keyframes += u64::from(keyframe);
                Ok(())
            }
            _ => Ok(()), // end of sequence
        }
    }

    /// An audio tag body (AUDIODATA) at `ts_ms`.
    pub fn audio(&mut self, ts_ms: u64, tag: &[u8], out: &mut Vec<u8>) -> Result<(), FlvError> {
        if tag.len() > MAX_ACCESS_UNIT_BYTES {
            return Err(FlvError::TooLarge(tag.len()));
        }
        let Some(&first) = tag.first() else {
            return Err(FlvError::TooShort("audio", 0));
        };
        if first >> 4 != SOUND_AAC {
            return Err(FlvError::UnsupportedAudio(first >> 4));
        }
        if tag.len() < 2 {
            return Err(FlvError::TooShort("audio", tag.len()));
        }
        let body = &tag[2..];
        if tag[1] == 0 {
            self.aac = Some(AacConfig::parse(body)?);
            return Ok(());
        }
        let Some(aac) = self.aac else {
            return Err(FlvError::BadAacConfig(
                "AAC frame before its AudioSpecificConfig",
            ));
        };
        if !self.started {
            self.stats.waiting_dropped += 1;
            return Ok(());
        }
        if body.len() + 7 > 0x1FFF {
            return Err(FlvError::TooLarge(body.len()));
        }
        let mut adts = Vec::with_capacity(body.len() + 7);
        adts.extend_from_slice(&aac.adts_header(body.len()));
        adts.extend_from_slice(body);
        self.mux.write_audio(ts_ms, &adts, out);
        self.stats.audio_frames += 1;
        Ok(())
    }

    fn avc_config(&mut self, rec: &[u8]) -> Result<(), FlvError> {
        if rec.len() < 7 {
            return Err(FlvError::BadAvcConfig("shorter than 7 bytes"));
        }
        if rec[0] != 1 {
            return Err(FlvError::BadAvcConfig("configurationVersion is not 1"));
        }
        let nal_length_size = usize::from(rec[4] & 0x03) + 1;
        if nal_length_size == 3 {
            return Err(FlvError::BadAvcConfig("NAL length size 3"));
        }
        let mut sets = Vec::new();
        let mut pos = 5;
        for kind in 0..2 {
            let count = *rec.get(pos).ok_or(FlvError::BadAvcConfig("truncated"))?;
            let count = if kind == 0 { count & 0x1F } else { count };
            pos += 1;
            for _ in 0..count {
                let len = rec
                    .get(pos..pos + 2)
                    .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
                    .ok_or(FlvError::BadAvcConfig("truncated"))?;
                pos += 2;
                let unit = rec
                    .get(pos..pos + len)
                    .ok_or(FlvError::BadAvcConfig("parameter set runs past the record"))?;
                sets.extend_from_slice(&START_CODE);
                sets.extend_from_slice(unit);
                pos += len;
            }
        }
        self.nal_length_size = nal_length_size;
        self.parameter_sets = Some(sets);
        Ok(())
    }

    fn nal_units_to_annex_b(&self, mut body: &[u8], out: &mut Vec<u8>) -> Result<(), FlvError> {
        let n = self.nal_length_size;
        while !body.is_empty() {
            if body.len() < n {
                return Err(FlvError::BadNalLength {
                    len: n,
                    left: body.len(),
                });
            }
            let len = body[..n]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            body = &body[n..];
            if len > body.len() {
                return Err(FlvError::BadNalLength {
                    len,
                    left: body.len(),
                });
            }
            out.extend_from_slice(&START_CODE);
            out.extend_from_slice(&body[..len]);
            body = &body[len..];
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ts::PACKET_SIZE;

    fn avc_header() -> Vec<u8> {
        // keyframe + AVC, sequence header, cts 0, record: 1 SPS, 1 PPS.
        let mut t = vec![0x17, 0, 0, 0, 0, 1, 0x42, 0xC0, 0x1E, 0xFF, 0xE1, 0, 4];
        t.extend_from_slice(&[0x67, 0x42, 0xC0, 0x1E]);
        t.extend_from_slice(&[1, 0, 2, 0x68, 0xCE]);
        t
    }

    fn nalu_tag(key: bool, nal: &[u8]) -> Vec<u8> {
        let mut t = vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, 0];
        t.extend_from_slice(&(nal.len() as u32).to_be_bytes());
        t.extend_from_slice(nal);
        t
    }

    #[test]
    fn keyframes_get_parameter_sets_in_annex_b() {
        let mut f = FlvToTs::new();
        let mut out = Vec::new();
        f.video(0, &avc_header(), &mut out).unwrap();
        assert!(out.is_empty());
        f.video(0, &nalu_tag(false, &[0x41, 1]), &mut out).unwrap();
        assert!(out.is_empty(), "nothing before the first keyframe");
        f.video(40, &nalu_tag(true, &[0x65, 1, 2]), &mut out)
            .unwrap();
        assert_eq!(out.len() % PACKET_SIZE, 0);
        let es: Vec<u8> = out
            .chunks(PACKET_SIZE)
            .filter(|p| p[1] & 0x1F == 1 && p[2] == 0)
            .flat_map(|p| p[4..].to_vec())
            .collect();
        let want = [
            0, 0, 0, 1, 0x67, 0x42, 0xC0, 0x1E, 0, 0, 0, 1, 0x68, 0xCE, 0, 0, 0, 1, 0x65, 1, 2,
        ];
        assert!(
            es.windows(want.len()).any(|w| w == want),
            "SPS, PPS, IDR in Annex B"
        );
        assert_eq!(f.stats().keyframes, 1);
    }

    #[test]
    fn bad_tags_are_errors_not_panics() {
        let mut f = FlvToTs::new();
        let mut out = Vec::new();
        assert!(f.video(0, &[], &mut out).is_err());
        assert!(f.video(0, &[0x17], &mut out).is_err());
        assert!(matches!(
            f.video(0, &[0x1C, 1, 0, 0, 0], &mut out),
            Err(FlvError::UnsupportedVideo(_))
        ));
        assert!(matches!(
            f.video(0, &[0x90, b'h', b'v', b'c', b'1'], &mut out),
            Err(FlvError::UnsupportedVideo(_))
        ));
        assert_eq!(
            f.video(0, &nalu_tag(true, &[0x65]), &mut out),
            Err(FlvError::NoAvcConfig)
        );
        assert!(f
            .video(
                0,
                &[0x17, 0, 0, 0, 0, 1, 0, 0, 0, 0xFF, 0xE5, 0, 200],
                &mut out
            )
            .is_err());
        f.video(0, &avc_header(), &mut out).unwrap();
        // A NAL length far past the tag (the "absurd size").
        let mut absurd = vec![0x17, 1, 0, 0, 0, 0x7F, 0xFF, 0xFF, 0xFF, 0x65];
        assert!(matches!(
            f.video(0, &absurd, &mut out),
            Err(FlvError::BadNalLength { .. })
        ));
        absurd.truncate(7);
        assert!(f.video(0, &absurd, &mut out).is_err());
        assert!(f.audio(0, &[], &mut out).is_err());
        assert!(f.audio(0, &[0x2F, 1, 2], &mut out).is_err());
        assert!(f.audio(0, &[0xAF, 0, 0x12], &mut out).is_err());
        assert!(f.audio(0, &[0xAF, 1, 0x12], &mut out).is_err());
        assert!(out.is_empty());
        // Random bytes never panic.
        let mut x: u32 = 12345;
        for len in 0..300 {
            let tag: Vec<u8> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    (x >> 16) as u8
                })
                .collect();
            let _ = f.video(0, &tag, &mut out);
            let _ = f.audio(0, &tag, &mut out);
        }
    }

    #[test]
    fn adts_header_of_lc_stereo_48k() {
        let aac = AacConfig::parse(&[0x11, 0x90]).unwrap();
        assert_eq!(
            aac,
            AacConfig {
                profile: 1,
                frequency_index: 3,
                channels: 2
            }
        );
        let h = aac.adts_header(100);
        assert_eq!(&h[..2], &[0xFF, 0xF1]);
        let len = ((u32::from(h[3]) & 3) << 11) | (u32::from(h[4]) << 3) | (u32::from(h[5]) >> 5);
        assert_eq!(len, 107);
    }
}
