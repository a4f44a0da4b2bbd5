//! Unit tests of the audio-only filter on hand-made packets.

use super::*;
use crate::psi::{parse_pmt, write_pat_packet, write_pmt_packet};
use crate::ts::{encode_pcr, pid_of};
use proptest::prelude::*;

const PMT_PID: u16 = 0x1000;
const VIDEO: u16 = 0x100;
const AUDIO: u16 = 0x101;

/// A payload packet on `pid`, its bytes all `fill`, with a PCR when given.
fn es_packet(pid: u16, cc: u8, fill: u8, pcr: Option<u64>) -> [u8; PACKET_SIZE] {
    let mut p = [fill; PACKET_SIZE];
    p[0] = SYNC_BYTE;
    p[1] = (pid >> 8) as u8;
    p[2] = pid as u8;
    match pcr {
        Some(pcr) => {
            p[3] = 0x30 | cc;
            p[4] = 7;
            p[5] = 0x10;
            p[6..12].copy_from_slice(&encode_pcr(pcr));
        }
        None => p[3] = 0x10 | cc,
    }
    p
}

fn pids(ts: &[u8]) -> Vec<u16> {
    ts.chunks(PACKET_SIZE).map(pid_of).collect()
}

/// PAT, PMT (video with the PCR, audio), SDT, video, audio.
fn block(pcr: u64) -> Vec<u8> {
    let mut ts = Vec::new();
    ts.extend_from_slice(&write_pat_packet(1, 1, PMT_PID, 0));
    ts.extend_from_slice(&write_pmt_packet(
        PMT_PID,
        1,
        VIDEO,
        &[(0x1B, VIDEO), (0x0F, AUDIO)],
        0,
    ));
    ts.extend_from_slice(&es_packet(0x11, 0, 0x42, None));
    ts.extend_from_slice(&es_packet(VIDEO, 0, 0xAA, Some(pcr)));
    ts.extend_from_slice(&es_packet(VIDEO, 1, 0xAA, None));
    ts.extend_from_slice(&es_packet(AUDIO, 0, 0xBB, None));
    ts
}

#[test]
fn keeps_pat_rewrites_pmt_keeps_audio_and_the_clock() {
    let mut f = AudioOnlyFilter::new();
    let out = f.filter(&block(27_000_000));
    assert_eq!(pids(&out), vec![PID_PAT, PMT_PID, VIDEO, AUDIO]);
    let pmt = parse_pmt(&TsPacket::parse(&out[PACKET_SIZE..2 * PACKET_SIZE]).unwrap())
        .expect("rewritten PMT parses, CRC included");
    assert_eq!(pmt.streams.len(), 1);
    assert_eq!(pmt.streams[0].pid, AUDIO);
    assert_eq!(pmt.pcr_pid, VIDEO, "the PCR PID stays the clock's carrier");
    let clock = TsPacket::parse(&out[2 * PACKET_SIZE..3 * PACKET_SIZE]).unwrap();
    assert_eq!(clock.pcr, Some(27_000_000));
    assert!(
        !clock.has_payload,
        "no video byte leaks in the clock packet"
    );
    assert_eq!(
        &out[3 * PACKET_SIZE..],
        &es_packet(AUDIO, 0, 0xBB, None)[..]
    );
    assert_eq!(f.audio_pids(), vec![AUDIO]);
    let s = f.stats();
    assert_eq!(
        (s.packets_in, s.packets_out, s.dropped, s.pcr_packets),
        (6, 4, 2, 1)
    );
}

#[test]
fn clock_packets_are_thinned_to_the_spacing() {
    let mut f = AudioOnlyFilter::new();
    f.filter(&block(0));
    let step = MIN_PCR_SPACING_27MHZ / 4;
    let mut sent = 0;
    for i in 1..=8u64 {
        let out = f.filter(&es_packet(VIDEO, 0, 0xAA, Some(i * step)));
        sent += out.len() / PACKET_SIZE;
    }
    assert_eq!(
        sent, 2,
        "8 PCRs a quarter spacing apart: every fourth passes"
    );
    // A clock that jumps back (a new source) passes at once.
    assert_eq!(
        f.filter(&es_packet(VIDEO, 0, 0xAA, Some(5))).len(),
        PACKET_SIZE
    );
}

#[test]
fn nothing_but_the_pat_passes_before_the_pmt() {
    let mut f = AudioOnlyFilter::new();
    let mut ts = Vec::new();
    ts.extend_from_slice(&es_packet(AUDIO, 0, 0xBB, None));
    ts.extend_from_slice(&write_pat_packet(1, 1, PMT_PID, 0));
    ts.extend_from_slice(&es_packet(AUDIO, 1, 0xBB, None));
    assert_eq!(pids(&f.filter(&ts)), vec![PID_PAT]);
}

#[test]
fn audio_as_a_private_stream_is_recognised_by_its_descriptor() {
    assert!(private_stream_is_audio(&[0x6A, 1, 0x00]));
    assert!(private_stream_is_audio(&[
        0x0A, 4, b'e', b'n', b'g', 0, 0x05, 4, b'O', b'p', b'u', b's'
    ]));
    assert!(!private_stream_is_audio(&[0x05, 4, b'K', b'L', b'V', b'A']));
    assert!(
        !private_stream_is_audio(&[0x6A, 9]),
        "a descriptor past the end"
    );
    assert!(is_audio_stream_type(0x0F) && !is_audio_stream_type(0x1B));
}

#[test]
fn pcr_on_the_audio_needs_no_clock_packets() {
    let mut f = AudioOnlyFilter::new();
    let mut ts = Vec::new();
    ts.extend_from_slice(&write_pat_packet(1, 1, PMT_PID, 0));
    ts.extend_from_slice(&write_pmt_packet(
        PMT_PID,
        1,
        AUDIO,
        &[(0x1B, VIDEO), (0x03, AUDIO)],
        0,
    ));
    ts.extend_from_slice(&es_packet(VIDEO, 0, 0xAA, Some(1)));
    ts.extend_from_slice(&es_packet(AUDIO, 0, 0xBB, Some(2)));
    assert_eq!(pids(&f.filter(&ts)), vec![PID_PAT, PMT_PID, AUDIO]);
    assert_eq!(f.stats().pcr_packets, 0);
}

#[test]
fn bad_input_is_counted_not_passed() {
    let mut f = AudioOnlyFilter::new();
    let mut pmt = write_pmt_packet(PMT_PID, 1, VIDEO, &[(0x0F, AUDIO)], 0);
    pmt[12] ^= 0xFF; // CRC no longer matches
    let mut ts = write_pat_packet(1, 1, PMT_PID, 0).to_vec();
    ts.extend_from_slice(&pmt);
    ts.extend_from_slice(&[0x00; PACKET_SIZE]); // no sync byte
    ts.extend_from_slice(&[0x47; 10]); // a partial packet
    assert_eq!(pids(&f.filter(&ts)), vec![PID_PAT]);
    assert_eq!(f.stats().malformed, 3);
}

proptest! {
    #[test]
    fn never_panics_and_never_grows(bytes in proptest::collection::vec(any::<u8>(), 0..2000), pat_first in any::<bool>()) {
        let mut f = AudioOnlyFilter::new();
        let mut input = if pat_first { block(1).to_vec() } else { Vec::new() };
        // Random packets with a sync byte, so that most of them parse.
        for chunk in bytes.chunks(PACKET_SIZE) {
            let mut p = [0u8; PACKET_SIZE];
            p[..chunk.len()].copy_from_slice(chunk);
            p[0] = SYNC_BYTE;
            input.extend_from_slice(&p);
        }
        let out = f.filter(&input);
        prop_assert!(out.len() <= input.len());
        prop_assert_eq!(out.len() % PACKET_SIZE, 0);
    }
}
