//! `tiercast keygen`: writes a new origin signing key (X3) — Ed25519, PKCS#8 v2,
//! PEM, readable by its owner only — for `tiercast origin --key-file`, and prints
//! its public key.

use anyhow::{Context, Result};
use clap::Args as ClapArgs;
use tiercast_net::origin_state::write_new_key;

#[derive(ClapArgs, Debug)]
pub struct Args {
    /// The key file to write (refused when it exists, unless --force).
    #[arg(long)]
    pub out: std::path::PathBuf,
    /// Replace an existing file.
    #[arg(long)]
    pub force: bool,
}

pub async fn run(a: Args) -> Result<()> {
    let key = write_new_key(&a.out, a.force).with_context(|| "writing the key".to_string())?;
    let hex: String = key
        .public_key()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    println!("key written to {}; public key {hex}", a.out.display());
    Ok(())
}
