//! Transparent huge pages for the processes whose state is millions of small
//! records read at random (X7: the coordinator's heartbeat path at 10⁶ nodes;
//! its benchmark). Each heartbeat reads ~15 node records scattered over
//! gigabytes; with 4 KiB pages nearly every one is a TLB miss as well as a
//! cache miss. Where the kernel gives huge pages only on request
//! (`/sys/kernel/mm/transparent_hugepage/enabled` = `madvise`, Debian's
//! default), glibc's allocator asks for them when started with
//! `GLIBC_TUNABLES=glibc.malloc.hugetlb=1` — a setting read only when the
//! process starts. So these roles start themselves again, once, with it added
//! (`exec`: same PID, same arguments), unless it is already there, the kernel
//! gives huge pages anyway or never, or `TIERCAST_HUGE_PAGES=0` says not to.
//! Measured in `docs/BENCHMARKS.md` ("Huge pages and a fast id hash").

use std::ffi::OsString;

/// The glibc tunable that makes `malloc` ask for transparent huge pages.
const TUNABLE: &str = "glibc.malloc.hugetlb=1";
/// Set to `0` to keep 4 KiB pages.
const OPT_OUT: &str = "TIERCAST_HUGE_PAGES";
const THP_MODE: &str = "/sys/kernel/mm/transparent_hugepage/enabled";

/// The value `GLIBC_TUNABLES` should take, or `None` when nothing is to be
/// done: the tunable is already set (this is the second start), the user
/// opted out, or the kernel's mode is not `madvise`.
fn wanted(tunables: Option<&str>, opt_out: Option<&str>, thp_mode: &str) -> Option<String> {
    if opt_out == Some("0") || !thp_mode.contains("[madvise]") {
        return None;
    }
    match tunables {
        Some(t) if t.contains("glibc.malloc.hugetlb") => None,
        Some(t) if !t.is_empty() => Some(format!("{t}:{TUNABLE}")),
        _ => Some(TUNABLE.to_string()),
    }
}

/// Starts this process again with huge pages asked for, when [`wanted`]; on
/// any failure it goes on as it is (the figures are then those of 4 KiB pages).
pub fn restart_with_huge_pages() {
    if !cfg!(all(target_os = "linux", target_env = "gnu")) {
        return;
    }
    let mode = std::fs::read_to_string(THP_MODE).unwrap_or_default();
    let tunables = std::env::var("GLIBC_TUNABLES").ok();
    let opt_out = std::env::var(OPT_OUT).ok();
    let Some(value) = wanted(tunables.as_deref(), opt_out.as_deref(), &mode) else {
        return;
    };
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    exec(exe, args, value);
}

#[cfg(unix)]
fn exec(exe: std::path::PathBuf, args: Vec<OsString>, tunables: String) {
    use std::os::unix::process::CommandExt;
    let err = std::process::Command::new(exe)
        .args(args)
        .env("GLIBC_TUNABLES", tunables)
        .exec();
    eprintln!("note: could not restart with huge pages ({err}); going on with 4 KiB pages");
}

#[cfg(not(unix))]
fn exec(_exe: std::path::PathBuf, _args: Vec<OsString>, _tunables: String) {}

/// Resident memory in transparent huge pages (`AnonHugePages` of
/// `/proc/self/smaps_rollup`), in bytes; `None` where it cannot be read.
pub fn resident_in_huge_pages() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/smaps_rollup").ok()?;
    let line = s.lines().find(|l| l.starts_with("AnonHugePages:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MADVISE: &str = "always [madvise] never\n";

    #[test]
    fn asked_for_once_only_where_the_kernel_gives_them_on_request() {
        assert_eq!(wanted(None, None, MADVISE).as_deref(), Some(TUNABLE));
        assert_eq!(
            wanted(Some("glibc.malloc.arena_max=2"), None, MADVISE).as_deref(),
            Some("glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1")
        );
        // The second start finds it set and goes on.
        assert_eq!(wanted(Some(TUNABLE), None, MADVISE), None);
        assert_eq!(wanted(Some("glibc.malloc.hugetlb=0"), None, MADVISE), None);
        // Opted out; the kernel gives them always, or never.
        assert_eq!(wanted(None, Some("0"), MADVISE), None);
        assert_eq!(wanted(None, None, "[always] madvise never"), None);
        assert_eq!(wanted(None, None, "always madvise [never]"), None);
        assert_eq!(wanted(None, None, ""), None);
    }
}
