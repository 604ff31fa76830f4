//! The host under test: the release `spinpresso-host` serving a manifest
//! generated from the repository's `spin.toml` plus the benchmark probe.

use anyhow::{anyhow, bail, Context, Result};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Writes `target/bench/spin.toml`: every component and route of the app's
/// `spin.toml` (paths made absolute) plus the probe's `/_bench/...` routes.
/// It lives in `target/bench/` so compiled components stay cached between runs.
pub fn bench_manifest(repo: &Path) -> Result<PathBuf> {
    let text = std::fs::read_to_string(repo.join("spin.toml")).context("reading spin.toml")?;
    let mut manifest: toml::Table = text.parse().context("parsing spin.toml")?;
    let absolute = |value: &mut toml::Value| {
        if let Some(path) = value.as_str() {
            *value = toml::Value::String(repo.join(path).display().to_string());
        }
    };
    let components =
        manifest.get_mut("component").and_then(|c| c.as_table_mut()).ok_or_else(|| anyhow!("no components"))?;
    for (_, component) in components.iter_mut() {
        let component = component.as_table_mut().ok_or_else(|| anyhow!("a component is not a table"))?;
        component.remove("build");
        if let Some(source) = component.get_mut("source") {
            absolute(source);
        }
        for file in component.get_mut("files").and_then(|f| f.as_array_mut()).into_iter().flatten() {
            match file {
                toml::Value::Table(mount) => {
                    if let Some(source) = mount.get_mut("source") {
                        absolute(source);
                    }
                }
                other => absolute(other),
            }
        }
    }
    let probe: toml::Table = toml::toml! {
        source = "target/wasm32-wasip2/component/benchprobe.wasm"
        key_value_stores = ["default"]
    };
    components.insert("benchprobe".into(), toml::Value::Table(probe));
    if let Some(source) = components["benchprobe"].as_table_mut().and_then(|p| p.get_mut("source")) {
        absolute(source);
    }
    let triggers = manifest
        .get_mut("trigger")
        .and_then(|t| t.get_mut("http"))
        .and_then(|h| h.as_array_mut())
        .ok_or_else(|| anyhow!("no HTTP triggers"))?;
    let probe_route: toml::Table = toml::toml! { route = "/_bench/..." component = "benchprobe" };
    triggers.push(toml::Value::Table(probe_route));
    let dir = repo.join("target").join("bench");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("spin.toml");
    std::fs::write(&path, toml::to_string(&manifest)?)?;
    Ok(path)
}

pub struct Host {
    child: Child,
    pub addr: SocketAddr,
    pub log: PathBuf,
    errors_log: PathBuf,
}

/// What the kernel says the host process used so far.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    pub cpu_seconds: f64,
    pub peak_rss_mib: f64,
}

impl Host {
    /// Starts the host on a fresh key-value file in `scratch` and waits until it serves.
    pub fn start(repo: &Path, manifest: &Path, scratch: &Path, max_instances: u32) -> Result<Self> {
        std::fs::create_dir_all(scratch)?;
        let log = scratch.join("host.log");
        let errors_log = scratch.join("host.err");
        let binary = repo.join("target/release/spinpresso-host");
        if !binary.exists() {
            bail!("{} is missing: run bench/run (it builds everything first)", binary.display());
        }
        let child = Command::new(&binary)
            .envs(crate::api::SECRETS)
            .args(["up", "--listen", "127.0.0.1:0", "--max-instances", &max_instances.to_string()])
            // Every simulated client comes from 127.0.0.1: one client to the
            // host's per-client caps, which must not be what is measured.
            .args(["--max-requests-per-client", &max_instances.to_string()])
            .args(["--max-streams-per-client", &max_instances.to_string()])
            .arg("--from")
            .arg(manifest)
            .arg("--kv-file")
            .arg(scratch.join("kv.db"))
            // Secrets it would make up stay in the scratch folder, not the developer's `.spin/`.
            .arg("--secrets-file")
            .arg(scratch.join("secrets.toml"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log)?)
            .stderr(std::fs::File::create(&errors_log)?)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut host = Self { child, addr: SocketAddr::from(([127, 0, 0, 1], 0)), log, errors_log };
        let started = Instant::now();
        loop {
            let text = std::fs::read_to_string(&host.log).unwrap_or_default();
            if let Some(addr) = text.lines().find_map(|l| l.strip_prefix("[host] serving http://")) {
                host.addr = addr.trim().parse()?;
                return Ok(host);
            }
            if let Some(status) = host.child.try_wait()? {
                bail!("the host exited ({status}): {}", std::fs::read_to_string(&host.errors_log).unwrap_or_default());
            }
            if started.elapsed() > Duration::from_secs(120) {
                bail!("the host did not start within 2 minutes");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU seconds (user + system) and peak resident memory, from `/proc`.
    pub fn usage(&self) -> Result<Usage> {
        let pid = self.child.id();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
        let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default();
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let ticks: f64 = fields.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
            + fields.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        // SAFETY: sysconf only reads a system constant.
        let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let peak_kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .unwrap_or(0.0);
        Ok(Usage { cpu_seconds: ticks / per_second, peak_rss_mib: peak_kib / 1024.0 })
    }

    /// Lines the host wrote to stderr that report a failure.
    pub fn failures(&self) -> Vec<String> {
        std::fs::read_to_string(&self.errors_log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("failed") || l.contains("panicked") || l.contains("error"))
            .map(str::to_string)
            .collect()
    }

    pub fn stop(mut self) -> Result<()> {
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
