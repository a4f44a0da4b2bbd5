//! `tiercast` — the one binary: `tiercast <coordinator|origin|keygen|relay|peer|viewer|demo|bench|sim|sim-locality|cluster|policy> ...`.
//!
//! - [`cmd::common`] — options shared by roles (cluster key, coordinator URL, logging).
//! - [`cmd::coordinator`], [`cmd::origin`], [`cmd::relay`], [`cmd::peer`], [`cmd::viewer`] — the roles.
//! - [`cmd::keygen`] — writes an origin signing key.
//! - [`cmd::demo`] — X6: a whole overlay on one machine with a live table.
//! - [`cmd::bench`] — benchmarks that print figures (per-hop latency).
//! - [`cmd::sim`] — X5: the discrete-event simulator on a scenario file.
//! - [`cmd::sim_locality`] — issue 14: the locality group machines in the simulator.
//! - [`cmd::cluster`] — the same scenario file over real processes in network namespaces (issue 13).
//! - [`cmd::policy`] — C3: `policy check FILE`, `policy apply FILE --coordinator URL`.
//! - [`huge_pages`] — the coordinator and its benchmark start again with huge pages asked for (X7).

mod cmd;
mod huge_pages;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "tiercast",
    version,
    about = "A live-stream distribution overlay: origin -> tiers of relays -> viewers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once at start: the size of the largest variant (the origin's flags) does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run the coordinator: HTTP API (/watch, /status) on TCP and node links on UDP, same address.
    Coordinator(cmd::coordinator::Args),
    /// Run an origin: ingest MPEG-TS (UDP, TCP, HTTP push, SRT), RTMP, or a test source, and feed tier 1.
    Origin(cmd::origin::Args),
    /// Write a new origin signing key (Ed25519, PKCS#8 PEM) for `origin --key-file`.
    Keygen(cmd::keygen::Args),
    /// Run a relay in a tier: it serves child relays and HTTP viewers at /live/<channel>.ts.
    Relay(cmd::relay::Args),
    /// Run a peer: watch a channel through the peer overlay, feed other peers from its uplink, play it locally.
    Peer(cmd::peer::Args),
    /// Run a protocol viewer: watch a channel through the overlay and report blocks received and missing.
    Viewer(cmd::viewer::Args),
    /// Run a whole overlay on this machine, ramp viewers up and down, print a live table.
    Demo(cmd::demo::Args),
    /// Benchmarks that print figures.
    Bench(cmd::bench::Args),
    /// Simulate a scenario file with the real machines: metrics.json, events.log, timeline, plots.
    Sim(cmd::sim::Args),
    /// Simulate locality-aware peer groups (issue 14, L1-L6): groups found vs true regions, join cost, leader crashes.
    SimLocality(cmd::sim_locality::Args),
    /// Run a scenario file (up to ~60 nodes) as real processes, each in its own network namespace: metrics.json from the nodes' reports.
    Cluster(cmd::cluster::Args),
    /// Operators' policies (docs/POLICIES.md): `policy check FILE` / `policy apply FILE --coordinator URL` print `ok: N rules` or the line and the reason.
    Policy(cmd::policy::Args),
    /// Publish keys kept in the coordinator's store: `publish-keys set CHANNEL --key K | --file F --coordinator URL` (an empty set takes them away).
    PublishKeys(cmd::publish_keys::Args),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, Command::Coordinator(_) | Command::Bench(_)) {
        huge_pages::restart_with_huge_pages();
    }
    cmd::common::init_logging();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        match cli.command {
            Command::Coordinator(a) => cmd::coordinator::run(a).await,
            Command::Origin(a) => cmd::origin::run(a).await,
            Command::Keygen(a) => cmd::keygen::run(a).await,
            Command::Relay(a) => cmd::relay::run(a).await,
            Command::Peer(a) => cmd::peer::run(a).await,
            Command::Viewer(a) => cmd::viewer::run(a).await,
            Command::Demo(a) => cmd::demo::run(a).await,
            Command::Bench(a) => cmd::bench::run(a).await,
            Command::Sim(a) => cmd::sim::run(a).await,
            Command::SimLocality(a) => cmd::sim_locality::run(a).await,
            Command::Cluster(a) => cmd::cluster::run(a).await,
            Command::Policy(a) => cmd::policy::run(a).await,
            Command::PublishKeys(a) => cmd::publish_keys::run(a).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
