//! `--net-emulation FILE` on every role (issue 13, for `tiercast cluster`): a bad
//! file stops the process at start with the file and the problem named (also
//! through `TIERCAST_NET_EMULATION`); a good one puts the emulation's counters
//! in the node's and the coordinator's `/status`, delayed datagrams counted.

mod support;

use std::path::Path;
use std::time::Duration;
use support::{free_port, status_json, temp_dir, wait_for, Proc};

const GOOD: &str = r#"
region = "a"
seed = 3
[latency]
regions = ["a", "b"]
matrix_ms = [[0, 30], [30, 0]]
jitter_ms = 1
[[subnets]]
cidr = "127.0.0.1/32"
region = "a"
[[subnets]]
cidr = "127.0.0.2/32"
region = "b"
"#;

fn log(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default()
}

#[test]
fn a_bad_emulation_file_stops_every_role_at_start() {
    let dir = temp_dir("emu-bad");
    let bad = dir.join("bad-emulation.toml");
    std::fs::write(&bad, GOOD.replace("127.0.0.2/32", "127.0.0.2/40")).unwrap();
    let bad = bad.to_str().unwrap();
    let data = dir.join("data");
    let data = data.to_str().unwrap();
    let roles: [(&str, Vec<&str>); 5] = [
        (
            "coordinator",
            vec!["coordinator", "--listen", "127.0.0.1:0", "--data-dir", data],
        ),
        ("relay", vec!["relay", "--tier", "1"]),
        ("peer", vec!["peer"]),
        ("viewer", vec!["viewer"]),
        (
            "origin",
            vec!["origin", "--test-source", "100", "--data-dir", data],
        ),
    ];
    for (i, (name, args)) in roles.iter().enumerate() {
        let mut args = args.clone();
        // One role reads the file from the environment instead of the flag.
        let mut cmd = std::process::Command::new(support::BIN);
        if i == 1 {
            cmd.env("TIERCAST_NET_EMULATION", bad);
        } else {
            args.extend(["--net-emulation", bad]);
        }
        if *name != "coordinator" {
            args.extend(["--coordinator", "http://127.0.0.1:9"]);
        }
        cmd.args(&args).env("XDG_STATE_HOME", dir.join("state"));
        let mut p = Proc::spawn(name, &mut cmd, &dir);
        let status = p
            .wait_exit(Duration::from_secs(20))
            .unwrap_or_else(|| panic!("{name} kept running with a bad emulation file"));
        let text = log(&dir, name);
        assert!(!status.success(), "{name} exited with success: {text}");
        assert!(
            text.contains("bad-emulation.toml") && text.contains("prefix length \"40\""),
            "{name}: {text}"
        );
    }
    assert!(
        !Path::new(data).exists(),
        "a role touched its data directory"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_relay_with_an_emulation_file_reports_its_counters() {
    let dir = temp_dir("emu-good");
    let file_a = dir.join("a.toml");
    let file_b = dir.join("b.toml");
    std::fs::write(&file_a, GOOD).unwrap();
    std::fs::write(
        &file_b,
        GOOD.replacen("region = \"a\"", "region = \"b\"", 1),
    )
    .unwrap();
    let port = free_port();
    let coordinator = format!("http://127.0.0.1:{port}");
    let relay_port = {
        let l = std::net::TcpListener::bind("127.0.0.2:0").expect("127.0.0.2 on loopback");
        l.local_addr().unwrap().port()
    };
    let relay = format!("http://127.0.0.2:{relay_port}");
    let _c = Proc::tiercast(
        "coordinator",
        &[
            "coordinator",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
            dir.join("data").to_str().unwrap(),
            "--net-emulation",
            file_a.to_str().unwrap(),
        ],
        &dir,
    );
    let _r = Proc::tiercast(
        "relay",
        &[
            "relay",
            "--tier",
            "1",
            "--coordinator",
            &coordinator,
            "--listen",
            &format!("127.0.0.2:{relay_port}"),
            "--net-emulation",
            file_b.to_str().unwrap(),
        ],
        &dir,
    );
    let emu = wait_for("the relay registered", Duration::from_secs(20), || {
        let s = status_json(&relay)?;
        (s["registered"] == true).then(|| s["net_emulation"].clone())
    });
    assert!(emu["delayed"].as_u64().unwrap() > 0, "{emu}");
    assert_eq!(emu["lost"], 0, "{emu}");
    assert_eq!(emu["unknown_destination"], 0, "{emu}");
    let c = status_json(&coordinator).expect("coordinator status");
    assert!(c["net_emulation"]["delayed"].as_u64().unwrap() > 0, "{c}");
    let _ = std::fs::remove_dir_all(&dir);
}
