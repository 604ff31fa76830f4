//! The closed-loop load generator: N clients, each on its own connection,
//! each sending its next request as soon as the last one answered.
//! Every request's latency goes into a histogram (microseconds).

use crate::client::{Conn, Reply};
use hdrhistogram::Histogram;
use hyper::Method;
use serde_json::Value;
use std::cell::Cell;
use std::future::Future;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The host under test, whose CPU time each run measures.
pub static HOST_PID: OnceLock<u32> = OnceLock::new();

/// CPU time the host's threads have used so far (Linux `schedstat`, in
/// nanoseconds: finer than the 10 ms ticks of `/proc/<pid>/stat`).
fn host_cpu() -> Duration {
    let Some(pid) = HOST_PID.get() else { return Duration::ZERO };
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Duration::ZERO };
    let nanos: u64 = tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|line| line.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    Duration::from_nanos(nanos)
}

/// One simulated client: a connection plus what it measured.
pub struct Client {
    conn: Conn,
    pub latencies: Histogram<u64>,
    pub errors: u64,
    /// The first few unexpected replies, to show what went wrong.
    pub samples: Vec<String>,
}

pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("valid histogram bounds")
}

impl Client {
    pub fn new(addr: SocketAddr) -> Self {
        Self { conn: Conn::new(addr), latencies: histogram(), errors: 0, samples: Vec::new() }
    }

    /// One timed request; a reply outside `expected` (or no reply) counts as an error.
    pub async fn call(
        &mut self,
        expected: &[u16],
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Option<Reply> {
        let started = Instant::now();
        let reply = self.conn.call(method.clone(), path, token, body).await;
        let _ = self.latencies.record((started.elapsed().as_micros() as u64).max(1));
        match reply {
            Ok(reply) if expected.contains(&reply.status) => Some(reply),
            Ok(reply) => {
                self.error(format!("{method} {path} → {} {}", reply.status, reply.text()));
                None
            }
            Err(e) => {
                self.error(format!("{method} {path} → {e}"));
                None
            }
        }
    }

    pub fn error(&mut self, what: String) {
        self.errors += 1;
        if self.samples.len() < 3 {
            self.samples.push(what);
        }
    }
}

/// How much work a run does: for a while, or a set number of iterations.
pub enum Work {
    For(Duration),
    Count(u64),
}

/// What one scenario at one concurrency measured.
#[derive(Clone)]
pub struct Stats {
    pub clients: usize,
    pub iterations: u64,
    pub requests: u64,
    pub errors: u64,
    pub elapsed: Duration,
    /// The host's CPU time (all threads) while the run lasted.
    pub host_cpu: Duration,
    pub latencies: Histogram<u64>,
    pub samples: Vec<String>,
}

impl Stats {
    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    pub fn ms(&self, quantile: f64) -> f64 {
        self.latencies.value_at_quantile(quantile) as f64 / 1000.0
    }

    /// Host CPU time per request, in microseconds.
    pub fn cpu_us(&self) -> f64 {
        self.host_cpu.as_secs_f64() * 1e6 / self.requests.max(1) as f64
    }

    pub fn max_ms(&self) -> f64 {
        self.latencies.max() as f64 / 1000.0
    }

    /// Two runs of the same work as one (their requests over their summed time).
    pub fn merged(mut self, other: Stats) -> Stats {
        self.iterations += other.iterations;
        self.requests += other.requests;
        self.errors += other.errors;
        self.elapsed += other.elapsed;
        self.host_cpu += other.host_cpu;
        self.latencies.add(&other.latencies).expect("histograms with the same bounds");
        self.samples.extend(other.samples);
        self
    }
}

/// Runs `step(iteration, client)` on `clients` clients until the work is
/// done. A step owns its client while it runs and hands it back.
/// Runs on the current thread (inside a `LocalSet`), so steps need not be `Send`.
pub async fn run<F, Fut>(addr: SocketAddr, clients: usize, work: Work, step: F) -> Stats
where
    F: Fn(u64, Client) -> Fut + 'static,
    Fut: Future<Output = Client> + 'static,
{
    let step = Rc::new(step);
    let next = Rc::new(Cell::new(0u64));
    // Every client connects before the clock starts: a request's latency is
    // the call's own, as k6 and wrk count it, not the TCP and HTTP handshakes
    // (which all clients made at once, one after another on this thread: the
    // first 16 requests of a cell took 12–14 ms, 0.8 % of a flow cell's).
    let mut ready = Vec::with_capacity(clients);
    for _ in 0..clients {
        let mut client = Client::new(addr);
        // A failure here is met again, and counted, by the client's first call.
        let _ = client.conn.connect().await;
        ready.push(client);
    }
    let cpu_before = host_cpu();
    let started = Instant::now();
    let deadline = match work {
        Work::For(duration) => Some(started + duration),
        Work::Count(_) => None,
    };
    let limit = match work {
        Work::Count(n) => n,
        Work::For(_) => u64::MAX,
    };
    let tasks: Vec<_> = ready
        .into_iter()
        .map(|mut client| {
            let (step, next) = (step.clone(), next.clone());
            tokio::task::spawn_local(async move {
                loop {
                    let i = next.get();
                    if i >= limit || deadline.is_some_and(|d| Instant::now() >= d) {
                        break client;
                    }
                    next.set(i + 1);
                    client = step(i, client).await;
                }
            })
        })
        .collect();
    let mut stats = Stats {
        clients,
        iterations: 0,
        requests: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        host_cpu: Duration::ZERO,
        latencies: histogram(),
        samples: Vec::new(),
    };
    for task in tasks {
        let client = task.await.expect("a load client panicked");
        stats.requests += client.latencies.len();
        stats.errors += client.errors;
        stats.latencies.add(&client.latencies).expect("histograms with the same bounds");
        stats.samples.extend(client.samples);
    }
    stats.elapsed = started.elapsed();
    stats.host_cpu = host_cpu().saturating_sub(cpu_before);
    stats.iterations = next.get().min(limit);
    stats.samples.truncate(3);
    stats
}
