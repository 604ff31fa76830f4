//! `spinpresso-host`: runs a Spin application (`spin.toml`) locally on
//! wasmtime, with key-value data in an SQLite file Spin itself can read.

mod admission;
mod banner;
mod builder;
mod compile_cache;
mod durable;
mod engine;
mod guest_output;
mod intake;
mod kv;
mod kv_redis;
mod kv_session;
mod kv_sqlite;
mod local_secrets;
mod log;
mod manifest;
mod measure;
mod routes;
mod runtime_config;
mod server;
mod spin_interfaces;
mod variables;
mod wal_batch;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use log::out;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(version, about = "Runs a Spin application locally on wasmtime")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the application.
    Up(Box<UpArgs>),
    /// Print each component's .wasm size and instantiation time (JSON lines).
    Measure(MeasureArgs),
}

#[derive(clap::Args)]
struct MeasureArgs {
    /// The application manifest.
    #[arg(short = 'f', long = "from", default_value = "spin.toml")]
    manifest: PathBuf,
    /// Instantiations timed per component (after a warm-up).
    #[arg(long, default_value_t = 1000)]
    rounds: u32,
}

#[derive(clap::Args)]
struct UpArgs {
    /// The application manifest.
    #[arg(short = 'f', long = "from", default_value = "spin.toml")]
    manifest: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// Run each component's build command first.
    #[arg(long)]
    build: bool,
    /// The key-value database (default: `.spin/sqlite_key_value.db` beside the manifest, as Spin does).
    #[arg(long)]
    kv_file: Option<PathBuf>,
    /// Spin runtime config: key-value stores (`spin`, `redis`) and variable providers (`env`).
    #[arg(long)]
    runtime_config_file: Option<PathBuf>,
    /// Seconds between calls to `/internal/sweep` when the app has that route (0 = never).
    #[arg(long, default_value_t = 5)]
    sweep_every: u64,
    /// Requests and event streams served at once (each holds one instance);
    /// beyond it requests get 503 + Retry-After.
    #[arg(long, default_value_t = engine::InstanceLimits::default().instances)]
    max_instances: u32,
    /// Largest request body, in bytes; a larger one gets 413.
    #[arg(long, default_value_t = 1 << 20)]
    max_body_bytes: u64,
    /// Seconds a connection gets to send complete request headers, also
    /// when idle between requests; then it is closed (0 = no limit).
    #[arg(long, default_value = "10", value_parser = seconds)]
    header_timeout: Duration,
    /// Seconds a request body gets to arrive; then 408 (0 = no limit).
    #[arg(long, default_value = "10", value_parser = seconds)]
    body_timeout: Duration,
    /// Seconds a component gets to answer a request; then 504 (0 = no limit).
    #[arg(long, default_value = "30", value_parser = seconds)]
    request_timeout: Duration,
    /// Seconds from a request's arrival until its whole response is sent,
    /// event streams included (they end after 25 s); then the connection is
    /// closed and the instance freed, so a client that stops reading holds
    /// nothing (0 = no limit).
    #[arg(long, default_value = "60", value_parser = seconds)]
    response_timeout: Duration,
    /// Requests one client (IPv4 address or IPv6 /64) may have in flight.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    max_requests_per_client: u32,
    /// Seconds a request beyond --max-requests-per-client waits for a turn; then 503.
    #[arg(long, default_value = "5", value_parser = seconds)]
    queue_timeout: Duration,
    /// Event streams one client (IPv4 address or IPv6 /64) may have open; beyond, 503.
    #[arg(long, default_value_t = 500)]
    max_streams_per_client: u32,
    /// Instance slots event streams can never take, kept for requests.
    #[arg(long, default_value_t = 100)]
    reserved_for_requests: u32,
    /// Seconds to connect to Redis, and for each Redis reply; then the store is unavailable.
    #[arg(long, default_value = "2", value_parser = seconds)]
    redis_timeout: Duration,
    /// Where secrets the host makes up for unset secret variables are kept
    /// (default: `.spin/secrets.toml` beside the manifest).
    #[arg(long)]
    secrets_file: Option<PathBuf>,
    /// Log one line per request, and what components write to standard output.
    #[arg(long)]
    log_requests: bool,
}

const SWEEP_ROUTE: &str = "/internal/sweep";

/// A duration flag in seconds (decimals allowed).
fn seconds(text: &str) -> Result<Duration, String> {
    text.parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| format!("`{text}` is not a number of seconds"))
}

/// A time limit; 0 means none.
fn limit(duration: Duration) -> Option<Duration> {
    (!duration.is_zero()).then_some(duration)
}

fn main() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let done = match Cli::parse().command {
        Command::Up(args) => runtime.block_on(up(*args)),
        Command::Measure(args) => runtime.block_on(measure::instantiation(&args.manifest, args.rounds)),
    };
    log::flush();
    done
}

/// Where compiled components are cached: `.spin/wasmtime-cache` beside the
/// manifest (wasmtime wants an absolute path).
fn cache_dir(app_dir: &std::path::Path) -> Result<PathBuf> {
    Ok(std::path::absolute(app_dir.join(".spin").join("wasmtime-cache"))?)
}

async fn up(args: UpArgs) -> Result<()> {
    let manifest = manifest::Manifest::from_file(&args.manifest)?;
    if args.build {
        builder::build_all(&manifest)?;
    }
    let app_dir = args.manifest.parent().map(PathBuf::from).unwrap_or_default();
    let runtime = match &args.runtime_config_file {
        Some(path) => runtime_config::RuntimeConfig::from_file(path)?,
        None => runtime_config::RuntimeConfig::default(),
    };
    let default_file = args.kv_file.unwrap_or_else(|| app_dir.join(".spin").join("sqlite_key_value.db"));
    let mut stores: std::collections::BTreeMap<String, Arc<dyn kv::KvBackend>> = Default::default();
    let mut sqlite: std::collections::BTreeMap<PathBuf, Arc<kv::SqliteKv>> = Default::default();
    let mut configured = runtime.stores.clone();
    configured.entry("default".to_string()).or_insert(runtime_config::StoreConfig::Spin { path: None });
    for (label, store) in &configured {
        let backend: Arc<dyn kv::KvBackend> = match store {
            runtime_config::StoreConfig::Spin { path } => {
                let file = path.clone().unwrap_or_else(|| default_file.clone());
                // One connection per file, whatever the number of labels on it.
                let db = match sqlite.get(&file) {
                    Some(db) => db.clone(),
                    None => Arc::new(kv::SqliteKv::open(&file)?),
                };
                sqlite.insert(file.clone(), db.clone());
                out!("[host] key-value store `{label}`: {}", file.display());
                db
            }
            runtime_config::StoreConfig::Redis { url } => {
                out!("[host] key-value store `{label}`: Redis");
                Arc::new(kv_redis::RedisKv::open(url, limit(args.redis_timeout))?)
            }
        };
        stores.insert(label.clone(), backend);
    }
    let kv = Arc::new(kv::Stores::new(stores));
    let env = |name: &str| std::env::var(name).ok();
    let prefix = runtime.env_prefix.as_deref();
    let secrets_file = args.secrets_file.unwrap_or_else(|| app_dir.join(".spin").join("secrets.toml"));
    let local = local_secrets::LocalSecrets::load_or_create(&manifest, &secrets_file, |name| {
        variables::from_environment(name, prefix, env).is_some()
    })?;
    if !local.created.is_empty() {
        out!("[host] made up {} and kept them in {}", local.created.join(", "), secrets_file.display());
    }
    let variables = variables::Variables::resolve(&manifest, prefix, env, &local.values)?;
    for name in variables.defaulted_secrets() {
        eprintln!(
            "[host] WARNING: secret `{name}` has a value written in the manifest, which anyone who reads it knows; set {}",
            variables::env_name(name)
        );
    }
    out!("[host] application `{}`", manifest.name);
    let network = admission::Limits {
        max_body_bytes: args.max_body_bytes,
        header_timeout: limit(args.header_timeout),
        body_timeout: limit(args.body_timeout),
        response_timeout: limit(args.response_timeout),
        max_requests_per_client: args.max_requests_per_client,
        queue_timeout: args.queue_timeout,
        max_streams_per_client: args.max_streams_per_client,
        max_streams: admission::Limits::streams_within(args.max_instances, args.reserved_for_requests)?,
    };
    let limits = engine::InstanceLimits { instances: args.max_instances, ..Default::default() };
    let engine = engine::new_engine(limits)?;
    let cache = compile_cache::CompileCache::open(cache_dir(&app_dir)?);
    let banner_manifest = manifest.clone();
    let app = Arc::new(
        server::App::load(manifest, &engine, &cache, kv, variables, args.log_requests)?
            .with_request_timeout(limit(args.request_timeout)),
    );

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let origin = format!("http://{}", listener.local_addr()?);
    out!("[host] serving {origin}");
    for line in banner::lines(&banner_manifest, &origin, &local) {
        out!("[host] {line}");
    }
    if args.sweep_every > 0 && app.has_route(SWEEP_ROUTE) {
        server::spawn_sweeper(app.clone(), SWEEP_ROUTE, Duration::from_secs(args.sweep_every));
    }
    server::serve(app, listener, network, stop_signal()).await?;
    out!("[host] stopped");
    Ok(())
}

/// Ctrl-C or SIGTERM.
async fn stop_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
