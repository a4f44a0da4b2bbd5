//! `tiercast policy check FILE [--regions a,b] [--channels x,y]` (C3): checks an
//! operators' policy file (docs/POLICIES.md) and prints `ok: N rules`, or the line
//! and the reason it is refused (exit status non-zero). Applying a file to a
//! running coordinator comes later.

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
    }
}

fn check_file(c: CheckArgs) -> Result<()> {
    let path = c.file.display().to_string();
    let len = std::fs::metadata(&c.file)
        .with_context(|| format!("reading {path}"))?
        .len();
    if len > MAX_FILE_BYTES {
        bail!("{path}: {len} bytes, more than {MAX_FILE_BYTES}");
    }
    let src = std::fs::read_to_string(&c.file).with_context(|| format!("reading {path}"))?;
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
