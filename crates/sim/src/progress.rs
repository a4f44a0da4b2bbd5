//! Progress of a run on stderr (X5): a bar redrawn in place on a terminal, plain
//! lines every 10 % of virtual time otherwise (logs, CI). Wall-clock figures shown
//! here never reach the deterministic outputs.

use std::io::{IsTerminal, Write};
use std::time::Instant;

pub(crate) struct Progress {
    enabled: bool,
    tty: bool,
    started: Instant,
    last_draw: Instant,
    end_us: u64,
    next_line_pct: u64,
}

impl Progress {
    pub fn new(enabled: bool, end_us: u64) -> Self {
        Progress {
            enabled,
            tty: std::io::stderr().is_terminal(),
            started: Instant::now(),
            last_draw: Instant::now(),
            end_us: end_us.max(1),
            next_line_pct: 10,
        }
    }

    pub fn update(&mut self, now_us: u64, events: u64, viewers: u64) {
        if !self.enabled {
            return;
        }
        let frac = (now_us as f64 / self.end_us as f64).min(1.0);
        let pct = frac * 100.0;
        let wall = self.started.elapsed().as_secs_f64().max(1e-9);
        let rate = events as f64 / wall;
        if self.tty {
            if self.last_draw.elapsed().as_millis() < 200 && frac < 1.0 {
                return;
            }
            self.last_draw = Instant::now();
            let width = 30;
            let full = (frac * width as f64) as usize;
            let bar: String = "#".repeat(full) + &".".repeat(width - full);
            let mut err = std::io::stderr().lock();
            let _ = write!(
                err,
                "\r[{bar}] {pct:5.1}%  t={:.0}/{:.0}s  {events} events ({rate:.0}/s)  viewers={viewers}  ",
                now_us as f64 / 1e6,
                self.end_us as f64 / 1e6,
            );
            let _ = err.flush();
        } else if pct as u64 >= self.next_line_pct {
            while self.next_line_pct <= pct as u64 {
                self.next_line_pct += 10;
            }
            eprintln!(
                "sim: {pct:3.0}%  t={:.0}/{:.0}s  {events} events ({rate:.0}/s)  viewers={viewers}  wall {wall:.1}s",
                now_us as f64 / 1e6,
                self.end_us as f64 / 1e6,
            );
        }
    }

    pub fn finish(&mut self, events: u64) {
        if !self.enabled {
            return;
        }
        let wall = self.started.elapsed().as_secs_f64();
        if self.tty {
            eprintln!();
        }
        eprintln!("sim: done, {events} events in {wall:.1}s of wall time");
    }
}
