//! `spinpresso-bench`: starts the release host on the release components and
//! measures it the way an operator would care about (see `docs/performance.md`).
//! Prints a Markdown table and writes it to `target/bench/results.md`.
//! Timings are reported, never asserted; the exit status is non-zero only
//! when requests failed.

mod api;
mod client;
mod components;
mod host;
mod load;
mod report;
mod rush;
mod sse;
mod throughput;

use anyhow::{Context, Result};
use clap::Parser;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Parser)]
#[command(about = "Benchmarks Spinpresso on the local host (run it through bench/run, which builds first)")]
struct Args {
    /// The repository (where spin.toml and target/ are).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/.."))]
    repo: PathBuf,
    /// Client counts for the request table.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    clients: Vec<usize>,
    /// Seconds each single-endpoint cell runs.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Customer flows per client in each flow cell (at least --min-flows).
    #[arg(long, default_value_t = 60)]
    flows_per_client: u64,
    #[arg(long, default_value_t = 300)]
    min_flows: u64,
    /// Concurrent board-stream clients.
    #[arg(long, default_value_t = 1000)]
    sse_clients: usize,
    /// Order changes made while they listen.
    #[arg(long, default_value_t = 100)]
    sse_changes: usize,
    /// Milliseconds between two changes.
    #[arg(long, default_value_t = 50)]
    sse_pace_ms: u64,
    /// Orders in the conference rush.
    #[arg(long, default_value_t = 1000)]
    rush_orders: u64,
    #[arg(long, default_value_t = 64)]
    rush_customers: usize,
    #[arg(long, default_value_t = 4)]
    rush_baristas: usize,
    /// Instantiations timed per component.
    #[arg(long, default_value_t = 1000)]
    rounds: u32,
    /// A fast, small run (to check the benchmark itself works).
    #[arg(long)]
    quick: bool,
    /// Which parts to run.
    #[arg(long, value_delimiter = ',', default_value = "requests,sse,rush")]
    parts: Vec<String>,
}

fn main() -> Result<()> {
    let mut args = Args::parse();
    if args.quick {
        args.clients = vec![1, 4];
        args.seconds = 0.3;
        args.min_flows = 40;
        args.flows_per_client = 10;
        args.sse_clients = 40;
        args.sse_changes = 12;
        args.sse_pace_ms = 20;
        args.rush_orders = 60;
        args.rush_customers = 16;
        args.rush_baristas = 2;
        args.rounds = 20;
    }
    let repo = std::path::absolute(&args.repo)?;
    // One thread for the load: it leaves the other core(s) to the host.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let local = tokio::task::LocalSet::new();
    let markdown = local.block_on(&runtime, run(&args, &repo))?;
    println!("{}", markdown.0);
    let out = repo.join("target/bench/results.md");
    std::fs::write(&out, &markdown.0).with_context(|| format!("writing {}", out.display()))?;
    eprintln!("[bench] written to {}", out.display());
    if markdown.1 > 0 {
        anyhow::bail!("{} requests failed (see the tables)", markdown.1);
    }
    Ok(())
}

/// The report and the number of failed requests.
async fn run(args: &Args, repo: &Path) -> Result<(String, u64)> {
    let manifest = host::bench_manifest(repo)?;
    eprintln!("[bench] components: sizes and instantiation");
    let components = components::measure(repo, &manifest, args.rounds)?;
    let scratch = repo.join("target/bench").join(format!("run-{}", std::process::id()));
    let max_instances = (args.sse_clients as u32 + 500).max(1000);

    let part = |name: &str| args.parts.iter().any(|p| p == name);
    let server = host::Host::start(repo, &manifest, &scratch.join("requests"), max_instances)?;
    let _ = load::HOST_PID.set(server.pid());
    let mut rows = Vec::new();
    if part("requests") {
        eprintln!("[bench] requests at {:?} clients, host on {}", args.clients, server.addr);
        let settings = throughput::Settings {
            clients: args.clients.clone(),
            seconds: args.seconds,
            flows_per_client: args.flows_per_client,
            min_flows: args.min_flows,
        };
        rows = throughput::measure(server.addr, &settings).await?;
    }
    let mut sse = None;
    if part("sse") {
        eprintln!("[bench] {} board-stream clients, {} changes", args.sse_clients, args.sse_changes);
        let pace = Duration::from_millis(args.sse_pace_ms);
        sse = Some(sse::measure(server.addr, args.sse_clients, args.sse_changes, pace).await?);
    }
    let mut failures = server.failures();
    server.stop()?;

    let mut rush = None;
    if part("rush") {
        // A fresh host, so its peak memory is the rush's own.
        let server = host::Host::start(repo, &manifest, &scratch.join("rush"), max_instances)?;
        eprintln!("[bench] rush of {} orders", args.rush_orders);
        rush = Some(rush::measure(&server, args.rush_orders, args.rush_customers, args.rush_baristas).await?);
        failures.extend(server.failures());
        server.stop()?;
    }
    let _ = std::fs::remove_dir_all(&scratch);

    let report = report::Report {
        machine: machine(),
        rows: &rows,
        sse: sse.as_ref(),
        rush: rush.as_ref(),
        components: &components,
    };
    let mut markdown = report.markdown();
    if !failures.is_empty() {
        markdown.push_str(&format!("Host errors ({}): {:?}\n", failures.len(), &failures[..failures.len().min(3)]));
    }
    let failed = rows.iter().map(|r| r.stats.errors).sum::<u64>()
        + rush.as_ref().map_or(0, |r| r.errors)
        + sse.as_ref().map_or(0, |s| (s.clients - s.complete_clients) as u64)
        + failures.len() as u64;
    Ok((markdown, failed))
}

/// CPU model, cores, memory, kernel and date: what the figures depend on.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model =
        cpuinfo.lines().find_map(|l| l.strip_prefix("model name")).map(|v| v.trim_start_matches([' ', '\t', ':']));
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kib| kib / 1024.0 / 1024.0)
        .unwrap_or(0.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let date = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!(
        "{date}: {} ({cores} cores), {memory_gib:.0} GiB, Linux {}; host and load generator on the same machine.",
        model.unwrap_or("unknown CPU"),
        kernel.trim()
    )
}
