//! What the block cutter has learnt from the stream's PAT and PMT: the PMT
//! PIDs, which PID is video, and the latest PAT and PMT packets to copy in
//! front of a mid-block keyframe. Features X1, X2.

use crate::psi::{parse_pat, parse_pmt};
use crate::ts::{TsPacket, PACKET_SIZE, PID_FIRST_USER, PID_NULL, PID_PAT};

/// Programs followed from one PAT; more are ignored (a limit on everything).
const MAX_PROGRAMS: usize = 16;

/// What the cutter has learnt from PAT and PMT.
#[derive(Debug, Default)]
pub(super) struct ProgramTracker {
    pmt_pids: Vec<u16>,
    pub video_pid: Option<u16>,
    pub last_pat: Option<[u8; PACKET_SIZE]>,
    pub last_pmt: Option<(u16, [u8; PACKET_SIZE])>,
}

impl ProgramTracker {
    pub fn observe(&mut self, packet: &TsPacket<'_>, raw: &[u8; PACKET_SIZE]) {
        if !packet.payload_unit_start {
            return;
        }
        if packet.pid == PID_PAT {
            let Ok(pat) = parse_pat(packet) else { return };
            self.last_pat = Some(*raw);
            let pids: Vec<u16> = pat
                .programs
                .iter()
                .take(MAX_PROGRAMS)
                .map(|e| e.pmt_pid)
                .collect();
            if pids != self.pmt_pids {
                if matches!(self.last_pmt, Some((pid, _)) if !pids.contains(&pid)) {
                    self.last_pmt = None;
                    self.video_pid = None;
                }
                self.pmt_pids = pids;
            }
        } else if self.pmt_pids.contains(&packet.pid) {
            let Ok(pmt) = parse_pmt(packet) else { return };
            let video = pmt.video_pid();
            let same_program = matches!(self.last_pmt, Some((pid, _)) if pid == packet.pid);
            // Follow the first program with video; don't flip between programs.
            if same_program
                || self.last_pmt.is_none()
                || (video.is_some() && self.video_pid.is_none())
            {
                self.last_pmt = Some((packet.pid, *raw));
                self.video_pid = video;
            }
        }
    }

    fn is_psi(&self, pid: u16) -> bool {
        pid < PID_FIRST_USER || pid == PID_NULL || self.pmt_pids.contains(&pid)
    }

    /// Video PID if known, else any PID that is not a table or stuffing.
    pub fn is_video(&self, pid: u16) -> bool {
        match self.video_pid {
            Some(video) => pid == video,
            None => !self.is_psi(pid),
        }
    }
}
