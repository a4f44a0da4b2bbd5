//! A tiny, valid H.264 (Baseline) elementary stream for the built-in test
//! source: 128x96 frames of one flat grey level that changes at every IDR.
//! Feature X1 (a test input without ffmpeg) and X2 (players can show it).
//!
//! An IDR codes its top-left macroblock as I_PCM with the grey level and every
//! other macroblock as Intra 16x16 DC prediction without residual, which copies
//! that level across the picture; P frames skip every macroblock. Each access
//! unit carries an SEI (user data unregistered) with the text
//! `tiercast test frame <n>` and an optional filler NAL to reach a size.

/// Picture size in macroblocks (128x96 pixels).
pub const WIDTH_MBS: u32 = 8;
pub const HEIGHT_MBS: u32 = 6;
const MBS: u32 = WIDTH_MBS * HEIGHT_MBS;

const NAL_SLICE: u8 = 1;
const NAL_IDR: u8 = 5;
const NAL_SEI: u8 = 6;
const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;
const NAL_AUD: u8 = 9;
const NAL_FILLER: u8 = 12;

/// Marks our SEI messages (random, fixed).
const SEI_UUID: [u8; 16] = *b"tiercast-testsrc";
/// Text before the frame number inside the SEI.
pub const FRAME_TAG: &str = "tiercast test frame ";

/// MSB-first bit writer with Exp-Golomb codes.
struct BitWriter {
    bytes: Vec<u8>,
    current: u8,
    used: u8,
}

impl BitWriter {
    fn new() -> Self {
        BitWriter {
            bytes: Vec::new(),
            current: 0,
            used: 0,
        }
    }

    fn bit(&mut self, bit: bool) {
        self.current = (self.current << 1) | u8::from(bit);
        self.used += 1;
        if self.used == 8 {
            self.bytes.push(self.current);
            self.current = 0;
            self.used = 0;
        }
    }

    fn bits(&mut self, value: u32, count: u32) {
        for i in (0..count).rev() {
            self.bit((value >> i) & 1 == 1);
        }
    }

    fn ue(&mut self, value: u32) {
        let coded = value + 1;
        let len = 32 - coded.leading_zeros();
        self.bits(0, len - 1);
        self.bits(coded, len);
    }

    fn se(&mut self, value: i32) {
        let mapped = if value > 0 {
            2 * value as u32 - 1
        } else {
            2 * value.unsigned_abs()
        };
        self.ue(mapped);
    }

    fn align_zero(&mut self) {
        while self.used != 0 {
            self.bit(false);
        }
    }

    /// rbsp_trailing_bits: a one, then zeros to the byte boundary.
    fn finish(mut self) -> Vec<u8> {
        self.bit(true);
        self.align_zero();
        self.bytes
    }
}

/// Appends a NAL unit with a 4-byte start code and emulation prevention.
fn push_nal(out: &mut Vec<u8>, nal_ref_idc: u8, nal_type: u8, rbsp: &[u8]) {
    out.extend_from_slice(&[0, 0, 0, 1, (nal_ref_idc << 5) | nal_type]);
    let mut zeros = 0;
    for &byte in rbsp {
        if zeros >= 2 && byte <= 3 {
            out.push(3);
            zeros = 0;
        }
        out.push(byte);
        zeros = if byte == 0 { zeros + 1 } else { 0 };
    }
}

fn sps() -> Vec<u8> {
    let mut w = BitWriter::new();
    w.bits(66, 8); // profile_idc: Baseline
    w.bits(0xC0, 8); // constraint_set0/1
    w.bits(30, 8); // level 3.0
    w.ue(0); // seq_parameter_set_id
    w.ue(4); // log2_max_frame_num_minus4: 8-bit frame_num
    w.ue(2); // pic_order_cnt_type 2: output order = decode order
    w.ue(1); // max_num_ref_frames
    w.bit(false); // gaps_in_frame_num_value_allowed_flag
    w.ue(WIDTH_MBS - 1);
    w.ue(HEIGHT_MBS - 1);
    w.bit(true); // frame_mbs_only_flag
    w.bit(true); // direct_8x8_inference_flag
    w.bit(false); // frame_cropping_flag
    w.bit(true); // vui_parameters_present_flag
    w.bits(0, 4); // aspect ratio, overscan, video signal, chroma loc: absent
    w.bit(true); // timing_info_present_flag
    w.bits(1, 32); // num_units_in_tick
    w.bits(50, 32); // time_scale: 25 frames/s
    w.bit(true); // fixed_frame_rate_flag
    w.bits(0, 4); // no HRD, no pic_struct, no bitstream restriction
    w.finish()
}

fn pps() -> Vec<u8> {
    let mut w = BitWriter::new();
    w.ue(0); // pic_parameter_set_id
    w.ue(0); // seq_parameter_set_id
    w.bit(false); // CAVLC
    w.bit(false); // bottom_field_pic_order_in_frame_present_flag
    w.ue(0); // num_slice_groups_minus1
    w.ue(0); // num_ref_idx_l0_default_active_minus1
    w.ue(0); // num_ref_idx_l1_default_active_minus1
    w.bit(false); // weighted_pred_flag
    w.bits(0, 2); // weighted_bipred_idc
    w.se(0); // pic_init_qp_minus26
    w.se(0); // pic_init_qs_minus26
    w.se(0); // chroma_qp_index_offset
    w.bit(true); // deblocking_filter_control_present_flag
    w.bit(false); // constrained_intra_pred_flag
    w.bit(false); // redundant_pic_cnt_present_flag
    w.finish()
}

fn idr_slice(idr_pic_id: u32, luma: u8) -> Vec<u8> {
    let mut w = BitWriter::new();
    w.ue(0); // first_mb_in_slice
    w.ue(7); // slice_type: I (all slices)
    w.ue(0); // pic_parameter_set_id
    w.bits(0, 8); // frame_num
    w.ue(idr_pic_id);
    w.bit(false); // no_output_of_prior_pics_flag
    w.bit(false); // long_term_reference_flag
    w.se(0); // slice_qp_delta
    w.ue(1); // disable_deblocking_filter_idc
    for mb in 0..MBS {
        if mb == 0 {
            w.ue(25); // I_PCM
            w.align_zero();
            for _ in 0..256 {
                w.bits(u32::from(luma), 8);
            }
            for _ in 0..128 {
                w.bits(128, 8);
            }
            continue;
        }
        w.ue(3); // I_16x16_2_0_0: DC prediction, no coded residual
        w.ue(0); // intra_chroma_pred_mode: DC
        w.se(0); // mb_qp_delta
                 // coeff_token of Intra16x16DCLevel with TotalCoeff 0: the table
                 // depends on nC, which is 16 next to the I_PCM macroblock.
        let beside_pcm = mb == 1 || mb == WIDTH_MBS;
        if beside_pcm {
            w.bits(0b00_0011, 6);
        } else {
            w.bit(true);
        }
    }
    w.finish()
}

fn p_slice(frame_num: u32) -> Vec<u8> {
    let mut w = BitWriter::new();
    w.ue(0); // first_mb_in_slice
    w.ue(5); // slice_type: P (all slices)
    w.ue(0); // pic_parameter_set_id
    w.bits(frame_num & 0xFF, 8);
    w.bit(false); // num_ref_idx_active_override_flag
    w.bit(false); // ref_pic_list_modification_flag_l0
    w.bit(false); // adaptive_ref_pic_marking_mode_flag
    w.se(0); // slice_qp_delta
    w.ue(1); // disable_deblocking_filter_idc
    w.ue(MBS); // mb_skip_run: the whole picture
    w.finish()
}

fn sei(frame: u64) -> Vec<u8> {
    let text = format!("{FRAME_TAG}{frame}");
    let mut rbsp = vec![5, (SEI_UUID.len() + text.len()) as u8];
    rbsp.extend_from_slice(&SEI_UUID);
    rbsp.extend_from_slice(text.as_bytes());
    rbsp.push(0x80);
    rbsp
}

/// One access unit (Annex B byte stream).
///
/// `frame` is the running frame number, `frames_since_idr` 0 for an IDR,
/// `idr_count` the number of IDRs before this one. When `min_bytes` is larger
/// than the natural size a filler NAL makes up the difference.
pub fn access_unit(frame: u64, frames_since_idr: u32, idr_count: u64, min_bytes: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(min_bytes.max(64));
    let idr = frames_since_idr == 0;
    push_nal(&mut out, 0, NAL_AUD, &[if idr { 0x10 } else { 0x30 }]);
    if idr {
        push_nal(&mut out, 3, NAL_SPS, &sps());
        push_nal(&mut out, 3, NAL_PPS, &pps());
    }
    push_nal(&mut out, 0, NAL_SEI, &sei(frame));
    if idr {
        let luma = 32 + ((idr_count * 53) % 192) as u8;
        push_nal(
            &mut out,
            3,
            NAL_IDR,
            &idr_slice((idr_count % 2) as u32, luma),
        );
    } else {
        push_nal(&mut out, 2, NAL_SLICE, &p_slice(frames_since_idr));
    }
    // A filler NAL costs 6 bytes of header and trailing bits.
    if min_bytes > out.len() + 6 {
        let mut filler = vec![0xFF; min_bytes - out.len() - 6];
        filler.push(0x80);
        push_nal(&mut out, 0, NAL_FILLER, &filler);
    }
    out
}

/// The frame number carried in an access unit's SEI, if it has one.
pub fn frame_number(data: &[u8]) -> Option<u64> {
    let tag = FRAME_TAG.as_bytes();
    let at = data.windows(tag.len()).position(|w| w == tag)? + tag.len();
    let digits: Vec<u8> = data[at..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .copied()
        .collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_golomb_codes() {
        let mut w = BitWriter::new();
        w.ue(0); // 1
        w.ue(1); // 010
        w.ue(3); // 00100
        w.se(-1); // 011
        w.bits(0, 4);
        assert_eq!(w.finish(), vec![0b1010_0010, 0b0011_0000, 0b1000_0000]);
    }

    #[test]
    fn emulation_prevention() {
        let mut out = Vec::new();
        push_nal(&mut out, 0, NAL_FILLER, &[0, 0, 1, 0, 0, 0, 5]);
        assert_eq!(&out[5..], &[0, 0, 3, 1, 0, 0, 3, 0, 5]);
    }

    #[test]
    fn access_units_carry_frame_numbers_and_sizes() {
        let idr = access_unit(7, 0, 1, 0);
        assert_eq!(frame_number(&idr), Some(7));
        assert!(idr.windows(5).any(|w| w == [0, 0, 0, 1, 0x65]));
        let p = access_unit(8, 1, 1, 1000);
        assert_eq!(p.len(), 1000);
        assert_eq!(frame_number(&p), Some(8));
    }
}
