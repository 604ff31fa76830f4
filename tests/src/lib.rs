//! Harness for the end-to-end tests: starts `spinpresso-host` (release build)
//! on a free 127.0.0.1 port with the real `.wasm` files, and talks HTTP to it.
//!
//! The binaries must be built first; `scripts/test.sh` does that. Set
//! `SPINPRESSO_HOST` to use another host binary.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub use serde_json::{json, Value};

pub mod raw;
pub mod redis;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ is inside the repo").to_path_buf()
}

pub fn host_binary() -> PathBuf {
    let path = std::env::var_os("SPINPRESSO_HOST")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/release/spinpresso-host"));
    assert!(path.exists(), "{} is missing: build it first (scripts/test.sh does)", path.display());
    path
}

/// Tests that open hundreds of connections or measure under load run one
/// at a time: the others run beside them.
pub fn one_heavy_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());
    HEAVY.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A fresh scratch folder under `target/e2e/`, removed when dropped.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Self {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let dir = repo_root().join("target/e2e").join(format!("{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// How to start a host.
pub struct HostOptions {
    pub manifest: PathBuf,
    pub kv_file: PathBuf,
    pub log_file: PathBuf,
    /// Where the host keeps secrets it makes up (never the repository's `.spin/`).
    pub secrets_file: PathBuf,
    pub env: Vec<(String, String)>,
    /// Variables the host must not inherit from the test's environment.
    pub removed_env: Vec<String>,
    pub extra_args: Vec<String>,
}

impl HostOptions {
    pub fn new(manifest: impl AsRef<Path>, scratch: &Scratch) -> Self {
        Self {
            manifest: repo_root().join(manifest),
            kv_file: scratch.path().join("kv.db"),
            log_file: scratch.path().join("host.log"),
            secrets_file: scratch.path().join("secrets.toml"),
            env: TEST_SECRETS.iter().map(|(name, value)| (name.to_string(), value.to_string())).collect(),
            removed_env: Vec::new(),
            extra_args: vec!["--sweep-every".into(), "0".into()],
        }
    }

    /// Sets an environment variable of the host (replacing an earlier value of it).
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.retain(|(n, _)| n != name);
        self.env.push((name.into(), value.into()));
        self
    }

    /// Leaves an environment variable unset (e.g. one of [`TEST_SECRETS`]).
    pub fn without_env(mut self, name: &str) -> Self {
        self.env.retain(|(n, _)| n != name);
        self.removed_env.push(name.into());
        self
    }

    pub fn args(mut self, args: &[&str]) -> Self {
        self.extra_args = args.iter().map(|a| a.to_string()).collect();
        self
    }

    fn command(&self, addr: SocketAddr) -> Command {
        let mut command = Command::new(host_binary());
        command
            .arg("up")
            .arg("--from")
            .arg(&self.manifest)
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--kv-file")
            .arg(&self.kv_file)
            .arg("--secrets-file")
            .arg(&self.secrets_file)
            .args(&self.extra_args)
            .stdin(Stdio::null());
        for name in &self.removed_env {
            command.env_remove(name);
        }
        for (name, value) in &self.env {
            command.env(name, value);
        }
        command
    }
}

/// A running host process; stopped (SIGTERM, then kill) when dropped.
pub struct Host {
    child: Option<Child>,
    pub addr: SocketAddr,
    log_file: PathBuf,
}

impl Host {
    /// Starts a host on a port the OS picks (so parallel tests never collide)
    /// and waits until it says where it serves.
    pub fn start(options: &HostOptions) -> Self {
        let log = std::fs::File::create(&options.log_file).unwrap();
        let child = options
            .command(LISTEN_ANY)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting the host");
        let mut host = Self { child: Some(child), addr: LISTEN_ANY, log_file: options.log_file.clone() };
        host.addr = host.wait_until_serving();
        host
    }

    /// Runs the host expecting it to fail at start; returns its output.
    pub fn start_failing(options: &HostOptions) -> (ExitStatus, String) {
        let output = options.command(LISTEN_ANY).output().expect("starting the host");
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        (output.status, text)
    }

    fn wait_until_serving(&mut self) -> SocketAddr {
        const MARKER: &str = "[host] serving http://";
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let log = self.log();
            if let Some(line) = log.lines().find_map(|l| l.strip_prefix(MARKER)) {
                return line.trim().parse().expect("the host prints its address");
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("the host exited at start ({status}):\n{log}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the host did not start serving within 60 s:\n{}", self.log());
    }

    /// The host's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the host is running").id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The host's output so far. It writes its standard output in batches,
    /// a few milliseconds after each line: this waits until the log settles.
    pub fn log(&self) -> String {
        let read = || std::fs::read_to_string(&self.log_file).unwrap_or_default();
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut last = read();
        loop {
            std::thread::sleep(Duration::from_millis(30));
            let now = read();
            if now == last || Instant::now() > deadline {
                return now;
            }
            last = now;
        }
    }

    /// The host's output once it contains `text`, or after 5 s without it
    /// (a guest's output is written as the guest produces it).
    pub fn log_once_it_has(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let log = self.log();
            if log.contains(text) || Instant::now() > deadline {
                return log;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process outright (SIGKILL), as a crash or the OOM killer would.
    pub fn kill(mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Sends SIGTERM and waits for the process to exit by itself.
    pub fn stop(mut self) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        terminate(&child);
        wait_with_timeout(&mut child, Duration::from_secs(15)).expect("the host did not stop within 15 s of SIGTERM")
    }

    pub fn get(&self, path: &str) -> Reply {
        request(&self.url(path), "GET", &[], None)
    }

    pub fn post(&self, path: &str, body: &str) -> Reply {
        request(&self.url(path), "POST", &[("content-type", "application/json")], Some(body))
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- host log ({}) ----\n{}", self.addr, self.log());
        }
        if let Some(mut child) = self.child.take() {
            terminate(&child);
            if wait_with_timeout(&mut child, Duration::from_secs(10)).is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

fn terminate(child: &Child) {
    // One signal needs no libc binding: the `kill` command sends it.
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
}

fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    None
}

const LISTEN_ANY: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

/// A response, whatever its status.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// One HTTP request on a fresh connection; 4xx and 5xx are answers, not errors.
pub fn request(url: &str, method: &str, headers: &[(&str, &str)], body: Option<&str>) -> Reply {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut builder = ureq::http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let response = match body {
        Some(body) => agent.run(builder.body(body.to_string()).unwrap()),
        None => agent.run(builder.body(()).unwrap()),
    }
    .unwrap_or_else(|e| panic!("{method} {url} failed: {e}"));
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_string(), v.to_str().unwrap_or_default().to_string()))
        .collect();
    let body = response.into_body().read_to_vec().unwrap_or_default();
    Reply { status, headers, body }
}

/// A caller of the API: its bearer token (none for anonymous calls).
#[derive(Clone)]
pub struct Caller {
    pub base: String,
    pub token: Option<String>,
}

/// `POST /internal/sweep` on `host` with `Authorization: Bearer <token>`.
pub fn sweep_with(host: &Host, token: &str) -> Reply {
    let bearer = format!("Bearer {token}");
    let headers = [("content-type", "application/json"), ("authorization", bearer.as_str())];
    request(&host.url("/internal/sweep"), "POST", &headers, Some("{}"))
}

/// The staff PINs every test host gets (see [`TEST_SECRETS`]).
pub const ADMIN_PIN: &str = "81726354";
pub const BARISTA_PIN: &str = "36271845";
pub const DISPLAY_PIN: &str = "54637281";
/// The machine credentials every test host gets.
pub const SWEEPER_TOKEN: &str = "test-sweeper-token-2f8e61c04b7d";
pub const METRICS_TOKEN: &str = "test-metrics-token-93ad05e7c1f4";

/// The secrets a test host runs with, as environment variables. spin.toml
/// publishes none (an empty secret disables what it guards); these exist
/// only in the tests' own environment.
pub const TEST_SECRETS: [(&str, &str); 6] = [
    ("SPIN_VARIABLE_SIGNING_KEY", "test-signing-key-5c1b9e2f7a4d8036b1e9c2a75f4d0e81"),
    ("SPIN_VARIABLE_ADMIN_PIN", ADMIN_PIN),
    ("SPIN_VARIABLE_BARISTA_PIN", BARISTA_PIN),
    ("SPIN_VARIABLE_DISPLAY_PIN", DISPLAY_PIN),
    ("SPIN_VARIABLE_SWEEPER_TOKEN", SWEEPER_TOKEN),
    ("SPIN_VARIABLE_METRICS_TOKEN", METRICS_TOKEN),
];

impl Caller {
    pub fn anonymous(host: &Host) -> Self {
        Self { base: host.url(""), token: None }
    }

    /// A new customer session.
    pub fn customer(host: &Host) -> Self {
        let reply = Self::anonymous(host).post("/api/session", json!({}));
        assert_eq!(reply.status, 200, "{}", reply.text());
        Self { base: host.url(""), token: Some(reply.json()["token"].as_str().unwrap().to_string()) }
    }

    /// A staff member signed in with `pin`.
    pub fn staff(host: &Host, pin: &str) -> Self {
        let reply = Self::anonymous(host).post("/api/staff/login", json!({ "pin": pin }));
        assert_eq!(reply.status, 200, "{}", reply.text());
        Self { base: host.url(""), token: Some(reply.json()["token"].as_str().unwrap().to_string()) }
    }

    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let mut headers = vec![];
        if let Some(auth) = &auth {
            headers.push(("authorization", auth.as_str()));
        }
        if body.is_some() {
            headers.push(("content-type", "application/json"));
        }
        let body = body.map(|b| b.to_string());
        request(&format!("{}{path}", self.base), method, &headers, body.as_deref())
    }

    pub fn get(&self, path: &str) -> Reply {
        self.call("GET", path, None)
    }

    pub fn post(&self, path: &str, body: Value) -> Reply {
        self.call("POST", path, Some(body))
    }

    /// Redeems `code` in `shop` as a new order (201) and returns the order id.
    pub fn redeem(&self, shop: &str, code: &str) -> String {
        let reply = self.post(&format!("/api/shops/{shop}/orders"), json!({ "code": code }));
        assert_eq!(reply.status, 201, "{}", reply.text());
        reply.json()["id"].as_str().unwrap().to_string()
    }

    pub fn put(&self, path: &str, body: Value) -> Reply {
        self.call("PUT", path, Some(body))
    }
}

/// The `error.code` of an error reply.
pub fn error_code(reply: &Reply) -> String {
    reply.json()["error"]["code"].as_str().unwrap_or_else(|| panic!("not an error: {}", reply.text())).to_string()
}

/// One server-sent event as a client received it.
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub id: Option<u64>,
    /// The `event:` field (`message` when absent); `end` when the response
    /// ended (completely), `broken` when the connection failed mid-response.
    pub kind: String,
    pub data: Value,
    /// Wall-clock milliseconds when it arrived.
    pub received_ms: i64,
}

/// An open event stream, read by a background thread.
pub struct SseStream {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub events: std::sync::mpsc::Receiver<SseEvent>,
    /// Reading stops (and the connection closes) when this is dropped.
    _stop: std::sync::mpsc::Sender<()>,
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

impl SseStream {
    /// Connects; returns once the response head arrived (or an error status with its body as one event).
    pub fn connect(url: &str, headers: &[(&str, &str)]) -> SseStream {
        use std::io::BufRead;
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let mut builder = ureq::http::Request::builder().method("GET").uri(url).header("accept", "text/event-stream");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let response = agent.run(builder.body(()).unwrap()).unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let status = response.status().as_u16();
        let head = response
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_string(), v.to_str().unwrap_or_default().to_string()))
            .collect();
        let (sender, events) = std::sync::mpsc::channel();
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            let mut reader = std::io::BufReader::new(response.into_body().into_reader());
            let (mut id, mut kind, mut data) = (None, String::new(), String::new());
            let mut line = String::new();
            let end = loop {
                if matches!(stopped.try_recv(), Err(std::sync::mpsc::TryRecvError::Disconnected)) {
                    return; // the test is done with this stream: drop the connection
                }
                line.clear();
                match reader.read_line(&mut line) {
                    Ok(0) => break "end",
                    Err(_) => break "broken",
                    Ok(_) => {}
                }
                let text = line.trim_end_matches(['\r', '\n']);
                if text.is_empty() {
                    if !data.is_empty() || !kind.is_empty() {
                        let event = SseEvent {
                            id,
                            kind: if kind.is_empty() { "message".into() } else { std::mem::take(&mut kind) },
                            data: serde_json::from_str(&data).unwrap_or(Value::String(data.clone())),
                            received_ms: now_ms(),
                        };
                        if sender.send(event).is_err() {
                            return;
                        }
                    }
                    data.clear();
                    continue;
                }
                if let Some(v) = text.strip_prefix("id: ") {
                    id = v.parse().ok();
                } else if let Some(v) = text.strip_prefix("event: ") {
                    kind = v.to_string();
                } else if let Some(v) = text.strip_prefix("data: ") {
                    data.push_str(v);
                }
            };
            let _ = sender.send(SseEvent { id: None, kind: end.into(), data: Value::Null, received_ms: now_ms() });
        });
        SseStream { status, headers: head, events, _stop: stop }
    }

    /// The next event, waiting at most `timeout`.
    pub fn next(&self, timeout: Duration) -> Option<SseEvent> {
        self.events.recv_timeout(timeout).ok()
    }

    /// Events until `n` of the kinds wanted have arrived (or the timeout passes).
    pub fn collect(&self, n: usize, timeout: Duration, wanted: impl Fn(&SseEvent) -> bool) -> Vec<SseEvent> {
        let deadline = Instant::now() + timeout;
        let mut got = Vec::new();
        while got.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(event) if wanted(&event) => got.push(event),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        got
    }
}

/// Runs `f(0..n)` on `n` threads released together, so the calls really race.
pub fn in_parallel<T: Send + 'static>(n: usize, f: impl Fn(usize) -> T + Send + Sync + 'static) -> Vec<T> {
    let f = std::sync::Arc::new(f);
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(n));
    let threads: Vec<_> = (0..n)
        .map(|i| {
            let (f, barrier) = (f.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                f(i)
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}
