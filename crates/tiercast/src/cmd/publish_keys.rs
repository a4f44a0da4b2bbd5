//! `tiercast publish-keys set CHANNEL [--key KEY]... [--file FILE] --coordinator URL`
//! (X1, X3, issue 17): keeps a channel's publish keys in the coordinator's store
//! (`POST /publish-keys/<channel>`, signed with the cluster key). The coordinator
//! keeps only their SHA-256 digests and sends them to the channel's origin and
//! standby now and whenever they announce; an origin checks publishers against
//! them besides its own `--publish-key` flags and key file. The set replaces the
//! previous one whole (a rotation: new connections with an old key are refused,
//! a live stream goes on); no key and no file takes the channel's keys away.
//! Prints `ok: N publish keys for channel 'C'`, or the reason it was refused.

use super::common::ClusterArgs;
use anyhow::{bail, Context, Result};
use clap::{Args as ClapArgs, Subcommand};
use std::path::PathBuf;
use tiercast_net::ingest::publish_key::{validate_key, MAX_KEY_FILE_BYTES};

#[derive(ClapArgs, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: PublishKeysCommand,
}

#[derive(Subcommand, Debug)]
pub enum PublishKeysCommand {
    /// Set a channel's publish keys in a running coordinator (replacing its set).
    Set(SetArgs),
}

#[derive(ClapArgs, Debug)]
pub struct SetArgs {
    /// The channel.
    pub channel: String,
    /// A key (repeat for several).
    #[arg(long = "key", value_name = "KEY")]
    pub keys: Vec<String>,
    /// A file of keys (`KEY` or `CHANNEL KEY` a line, `#` comments).
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// The coordinator's base URL.
    #[arg(long, default_value = "http://127.0.0.1:7000")]
    pub coordinator: String,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// How long the coordinator may take to answer.
const SET_TIMEOUT_MS: u64 = 10_000;

pub async fn run(a: Args) -> Result<()> {
    match a.command {
        PublishKeysCommand::Set(s) => set(s).await,
    }
}

async fn set(a: SetArgs) -> Result<()> {
    let mut body = String::new();
    for k in &a.keys {
        validate_key(k).map_err(|reason| anyhow::anyhow!("--key: {reason}"))?;
        body.push_str(k);
        body.push('\n');
    }
    if let Some(file) = &a.file {
        let path = file.display().to_string();
        let len = std::fs::metadata(file)
            .with_context(|| format!("reading {path}"))?
            .len();
        if len > MAX_KEY_FILE_BYTES {
            bail!("{path}: {len} bytes, more than {MAX_KEY_FILE_BYTES}");
        }
        body.push_str(&std::fs::read_to_string(file).with_context(|| format!("reading {path}"))?);
    }
    let key = a.cluster.key()?;
    let coordinator = tiercast_net::endpoint::CoordinatorUrl::parse(&a.coordinator).await?;
    let (status, answer) = tiercast_net::http::operator_client::post_signed(
        &coordinator,
        &format!("/publish-keys/{}", a.channel),
        body.as_bytes(),
        &key,
        std::time::Duration::from_millis(SET_TIMEOUT_MS),
    )
    .await?;
    match status {
        200 => {
            println!("{answer}");
            Ok(())
        }
        _ => bail!("the coordinator answered {status}: {answer}"),
    }
}
