//! `tiercast policy check` (C3; issue 11 "must show 7"): the shipped example
//! passes; a bad file is refused with the line and the reason and a non-zero exit;
//! unknown regions and channels are refused when the known ones are given.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use support::{temp_dir, BIN};

const REGIONS: &str = "eu-west,eu-central,us-east,cn";
const CHANNELS: &str = "match,concert,late-show";

fn example() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/policies/example.toml")
}

fn policy_check(file: &Path, extra: &[&str]) -> Output {
    Command::new(BIN)
        .arg("policy")
        .arg("check")
        .arg(file)
        .args(extra)
        .output()
        .expect("running tiercast")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn the_example_policy_file_passes() {
    let out = policy_check(&example(), &["--regions", REGIONS, "--channels", CHANNELS]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "ok: 15 rules");
}

#[test]
fn a_bad_policy_file_is_refused_with_the_line_and_the_reason() {
    let dir = temp_dir("policy-check");
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "[[network.link_cap]]\nname = \"cap\"\nregions = [\"eu-west\", \"us-east\"]\ncap_mbps = -5\n",
    )
    .unwrap();
    let out = policy_check(&bad, &[]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("bad.toml:4: cap_mbps must be a positive number"),
        "{err}"
    );
    assert!(text(&out.stdout).is_empty());
}

#[test]
fn unknown_regions_and_channels_are_refused_when_the_known_ones_are_given() {
    let out = policy_check(&example(), &["--regions", "eu-west,us-east,cn"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains(":43: unknown region `eu-central`"),
        "{}",
        text(&out.stderr)
    );
    let out = policy_check(&example(), &["--channels", "match,concert"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains(":9: unknown channel `late-show`"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_missing_file_is_an_error_not_a_panic() {
    let out = policy_check(Path::new("/nonexistent/policies.toml"), &[]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("reading /nonexistent/policies.toml"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
