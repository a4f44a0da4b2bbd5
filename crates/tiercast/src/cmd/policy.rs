//! `tiercast policy check FILE [--regions a,b] [--channels x,y]` (C3): checks an
//! operators' policy file (docs/POLICIES.md) and prints `ok: N rules`, or the line
//! and the reason it is refused (exit status non-zero).
//!
//! `tiercast policy apply FILE --coordinator URL` installs it in a running
//! coordinator (`POST /policy`, signed with the cluster key): the coordinator
//! checks it against the regions and channels it knows and answers `ok: N rules`,
//! or the line and the reason (the running policies stay).

use super::common::ClusterArgs;
use anyhow::{bail, Context, Result};
use clap::{Args as ClapArgs, Subcommand};
use std::collections::BTreeSet;
use std::path::PathBuf;
use tiercast_coordinator::policy::{check, Known};

#[derive(ClapArgs, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: PolicyCommand,
}

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Check a policy file: `ok: N rules`, or the line and the reason.
    Check(CheckArgs),
    /// Install a policy file in a running coordinator (signed with the cluster key).
    Apply(ApplyArgs),
}

#[derive(ClapArgs, Debug)]
pub struct ApplyArgs {
    /// The policy file (TOML).
    pub file: PathBuf,
    /// The coordinator's base URL.
    #[arg(long, default_value = "http://127.0.0.1:7000")]
    pub coordinator: String,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(ClapArgs, Debug)]
pub struct CheckArgs {
    /// The policy file (TOML).
    pub file: PathBuf,
    /// The known regions, comma-separated: any other region named is refused.
    #[arg(long, value_delimiter = ',')]
    pub regions: Option<Vec<String>>,
    /// The known channels, comma-separated: any other channel named is refused.
    #[arg(long, value_delimiter = ',')]
    pub channels: Option<Vec<String>>,
}

/// Longest policy file read (a policy file is a page of rules, not a data set).
const MAX_FILE_BYTES: u64 = 1 << 20;

pub async fn run(a: Args) -> Result<()> {
    match a.command {
        PolicyCommand::Check(c) => check_file(c),
        PolicyCommand::Apply(a) => apply_file(a).await,
    }
}

/// How long the coordinator may take to answer.
const APPLY_TIMEOUT_MS: u64 = 10_000;

async fn apply_file(a: ApplyArgs) -> Result<()> {
    let path = a.file.display().to_string();
    let src = read_policy_file(&a.file)?;
    let key = a.cluster.key()?;
    let coordinator = tiercast_net::endpoint::CoordinatorUrl::parse(&a.coordinator).await?;
    let (status, answer) = tiercast_net::http::operator_client::post_signed(
        &coordinator,
        "/policy",
        src.as_bytes(),
        &key,
        std::time::Duration::from_millis(APPLY_TIMEOUT_MS),
    )
    .await?;
    match status {
        200 => {
            println!("{answer}");
            Ok(())
        }
        400 => bail!("{path}: refused by the coordinator: {answer}"),
        _ => bail!("{path}: the coordinator answered {status}: {answer}"),
    }
}

fn read_policy_file(file: &std::path::Path) -> Result<String> {
    let path = file.display().to_string();
    let len = std::fs::metadata(file)
        .with_context(|| format!("reading {path}"))?
        .len();
    if len > MAX_FILE_BYTES {
        bail!("{path}: {len} bytes, more than {MAX_FILE_BYTES}");
    }
    std::fs::read_to_string(file).with_context(|| format!("reading {path}"))
}

fn check_file(c: CheckArgs) -> Result<()> {
    let path = c.file.display().to_string();
    let src = read_policy_file(&c.file)?;
    let set = |v: Option<Vec<String>>| {
        v.map(|v| {
            v.into_iter()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect::<BTreeSet<String>>()
        })
    };
    let known = Known {
        regions: set(c.regions),
        channels: set(c.channels),
    };
    match check(&src, &known) {
        Ok(p) => {
            println!("ok: {} rules", p.rule_count());
            Ok(())
        }
        Err(e) => bail!("{path}:{}: {}", e.line, e.reason),
    }
}
