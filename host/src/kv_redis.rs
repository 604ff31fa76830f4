//! Key-value data in Redis, shared by several host processes (scale-out).
//! Every operation the guests use is atomic across processes: `INCRBY` for
//! counters, a Lua script for compare-and-swap, `SET NX` for exclusive creates.
//! Keys are `{store}:{key}`, so several labels can share one database.
//!
//! Redis calls block, so a guest's call runs on tokio's blocking threads
//! (at most [`CONCURRENT_CALLS`] at once), never on the worker running the
//! guest. Connecting and each reply have a time limit; when Redis fails (no
//! answer in time, connection refused or cut), a circuit breaker makes every
//! call fail at once with "store unavailable" (guests answer 503) for
//! [`COOL_DOWN`], then lets one call try again, and closes once one succeeds.
//! `rediss://` URLs connect over TLS (rustls; the system's root certificates,
//! or those of `SSL_CERT_FILE`).

use anyhow::{Context, Result};
use redis::{Client, Commands, Connection, Script};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::kv::{KvBackend, KvError, KvOp, KvResult, Pending};

/// Redis calls running at once (and idle connections kept for reuse).
const CONCURRENT_CALLS: usize = 64;

/// How long calls fail at once after Redis failed, before one tries again.
const COOL_DOWN: Duration = Duration::from_secs(1);

/// A handle on one Redis database; clones share its connections.
#[derive(Clone)]
pub struct RedisKv(Arc<Inner>);

struct Inner {
    client: Client,
    idle: Mutex<Vec<Connection>>,
    swap: Script,
    /// Limit on connecting, and on each reply (`None` = wait for ever).
    timeout: Option<Duration>,
    breaker: Breaker,
    calls: Arc<tokio::sync::Semaphore>,
}

impl From<redis::RedisError> for KvError {
    fn from(e: redis::RedisError) -> Self {
        KvError::Other(format!("redis: {e}"))
    }
}

fn full(store: &str, key: &str) -> String {
    format!("{store}:{key}")
}

fn unavailable() -> KvError {
    KvError::Other("redis: the store is unavailable (it failed just now; it is tried again shortly)".into())
}

/// Whether an error says Redis itself is unreachable or stuck (rather than
/// refusing one command, e.g. `INCRBY` on a string).
fn is_outage(e: &redis::RedisError) -> bool {
    e.is_timeout() || e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal()
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// After a failure, calls fail fast until the cool-down is over; then one
/// call at a time tries Redis until one succeeds.
struct Breaker {
    state: Mutex<State>,
    /// A trying call that has not come back by then is given up on.
    probe_limit: Duration,
}

#[derive(Clone, Copy, PartialEq)]
enum State {
    Closed,
    Open { until: Instant },
    Probing { since: Instant },
}

impl Breaker {
    fn new(timeout: Option<Duration>) -> Self {
        let probe_limit = COOL_DOWN + timeout.map_or(Duration::from_secs(60), |t| t * 4);
        Self { state: Mutex::new(State::Closed), probe_limit }
    }

    /// Whether calls fail fast now (nothing changes).
    fn is_open(&self) -> bool {
        match *lock(&self.state) {
            State::Closed => false,
            State::Open { until } => Instant::now() < until,
            State::Probing { since } => since.elapsed() < self.probe_limit,
        }
    }

    /// Whether this call may go to Redis (and, after a cool-down, be the one that tries).
    fn allow(&self) -> bool {
        let mut state = lock(&self.state);
        match *state {
            State::Closed => true,
            State::Open { until } if Instant::now() < until => false,
            State::Probing { since } if since.elapsed() < self.probe_limit => false,
            State::Open { .. } | State::Probing { .. } => {
                *state = State::Probing { since: Instant::now() };
                true
            }
        }
    }

    fn succeeded(&self) {
        let mut state = lock(&self.state);
        if *state != State::Closed {
            *state = State::Closed;
            eprintln!("[host] Redis answers again");
        }
    }

    fn failed(&self, e: &redis::RedisError) {
        let mut state = lock(&self.state);
        if *state == State::Closed {
            eprintln!("[host] Redis failed ({e}): the store is unavailable; tried again every {COOL_DOWN:?}");
        }
        *state = State::Open { until: Instant::now() + COOL_DOWN };
    }
}

impl RedisKv {
    /// Connects once (so a wrong URL stops the start), with `timeout` on
    /// connecting and on each reply.
    pub fn open(url: &str, timeout: Option<Duration>) -> Result<Self> {
        // rustls with ring, whatever else is linked in.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = Client::open(url).with_context(|| format!("invalid Redis url `{url}`"))?;
        let inner = Inner {
            client,
            idle: Mutex::new(Vec::new()),
            // Replaces the value only if it is still the one the caller saw.
            swap: Script::new(
                "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2]) return 1 else return 0 end",
            ),
            timeout,
            breaker: Breaker::new(timeout),
            calls: Arc::new(tokio::sync::Semaphore::new(CONCURRENT_CALLS)),
        };
        let connection = inner.connect().with_context(|| format!("cannot connect to Redis at {url}"))?;
        lock(&inner.idle).push(connection);
        Ok(Self(Arc::new(inner)))
    }
}

impl Inner {
    fn connect(&self) -> redis::RedisResult<Connection> {
        let connection = match self.timeout {
            Some(timeout) => self.client.get_connection_with_timeout(timeout)?,
            None => self.client.get_connection()?,
        };
        connection.set_read_timeout(self.timeout)?;
        connection.set_write_timeout(self.timeout)?;
        Ok(connection)
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> redis::RedisResult<T>) -> KvResult<T> {
        if !self.breaker.allow() {
            return Err(unavailable());
        }
        let pooled = lock(&self.idle).pop();
        let mut connection = match pooled.map_or_else(|| self.connect(), Ok) {
            Ok(connection) => connection,
            Err(e) => {
                self.outage(&e);
                return Err(e.into());
            }
        };
        match f(&mut connection) {
            Ok(out) => {
                self.breaker.succeeded();
                let mut idle = lock(&self.idle);
                if idle.len() < CONCURRENT_CALLS {
                    idle.push(connection);
                }
                Ok(out)
            }
            // A connection that failed may be broken (a late reply would
            // answer the next command): it is never reused.
            Err(e) if is_outage(&e) => {
                self.outage(&e);
                Err(e.into())
            }
            Err(e) => {
                self.breaker.succeeded();
                Err(e.into())
            }
        }
    }

    /// Redis failed: calls fail fast for a while, and no idle connection
    /// (likely as dead as the one that failed) is used again.
    fn outage(&self, e: &redis::RedisError) {
        self.breaker.failed(e);
        lock(&self.idle).clear();
    }
}

impl KvBackend for RedisKv {
    fn get(&self, store: &str, key: &str) -> KvResult<Option<Vec<u8>>> {
        self.0.get(store, key)
    }
    fn set(&self, store: &str, key: &str, value: &[u8]) -> KvResult<()> {
        self.0.set(store, key, value)
    }
    fn delete(&self, store: &str, key: &str) -> KvResult<()> {
        self.0.delete(store, key)
    }
    fn exists(&self, store: &str, key: &str) -> KvResult<bool> {
        self.0.exists(store, key)
    }
    fn keys(&self, store: &str) -> KvResult<Vec<String>> {
        self.0.keys(store)
    }
    fn get_many(&self, store: &str, keys: &[String]) -> KvResult<Vec<(String, Option<Vec<u8>>)>> {
        self.0.get_many(store, keys)
    }
    fn set_many(&self, store: &str, entries: &[(String, Vec<u8>)]) -> KvResult<()> {
        self.0.set_many(store, entries)
    }
    fn delete_many(&self, store: &str, keys: &[String]) -> KvResult<()> {
        self.0.delete_many(store, keys)
    }
    fn increment(&self, store: &str, key: &str, delta: i64) -> KvResult<i64> {
        self.0.increment(store, key, delta)
    }
    fn compare_and_swap(&self, store: &str, key: &str, expected: Option<&[u8]>, new: &[u8]) -> KvResult<bool> {
        self.0.compare_and_swap(store, key, expected, new)
    }

    /// Runs on a blocking thread, so a slow Redis never holds the worker
    /// that runs guests; fails at once while the breaker is open.
    fn submit(&self, store: &str, op: KvOp) -> Pending {
        if self.0.breaker.is_open() {
            return Pending::ready(Err(unavailable()));
        }
        let (inner, store) = (self.0.clone(), store.to_string());
        Pending::Later(Box::pin(async move {
            let _turn = inner.calls.clone().acquire_owned().await;
            tokio::task::spawn_blocking(move || op.run_on(inner.as_ref(), &store))
                .await
                .unwrap_or_else(|e| Err(KvError::Other(format!("redis: the call failed ({e})"))))
        }))
    }
}

impl KvBackend for Inner {
    fn get(&self, store: &str, key: &str) -> KvResult<Option<Vec<u8>>> {
        self.with(|c| c.get(full(store, key)))
    }

    fn set(&self, store: &str, key: &str, value: &[u8]) -> KvResult<()> {
        self.with(|c| c.set(full(store, key), value))
    }

    fn delete(&self, store: &str, key: &str) -> KvResult<()> {
        self.with(|c| c.del(full(store, key)))
    }

    fn exists(&self, store: &str, key: &str) -> KvResult<bool> {
        self.with(|c| c.exists(full(store, key)))
    }

    fn keys(&self, store: &str) -> KvResult<Vec<String>> {
        let prefix = format!("{store}:");
        let mut keys: Vec<String> = self
            .with(|c| c.scan_match::<_, String>(format!("{prefix}*"))?.collect::<redis::RedisResult<Vec<String>>>())?;
        keys.iter_mut().for_each(|k| *k = k[prefix.len()..].to_string());
        keys.sort();
        Ok(keys)
    }

    fn get_many(&self, store: &str, keys: &[String]) -> KvResult<Vec<(String, Option<Vec<u8>>)>> {
        keys.iter().map(|k| Ok((k.clone(), self.get(store, k)?))).collect()
    }

    fn set_many(&self, store: &str, entries: &[(String, Vec<u8>)]) -> KvResult<()> {
        let pairs: Vec<(String, &[u8])> = entries.iter().map(|(k, v)| (full(store, k), v.as_slice())).collect();
        if pairs.is_empty() {
            return Ok(());
        }
        self.with(|c| c.mset(&pairs))
    }

    fn delete_many(&self, store: &str, keys: &[String]) -> KvResult<()> {
        let keys: Vec<String> = keys.iter().map(|k| full(store, k)).collect();
        if keys.is_empty() {
            return Ok(());
        }
        self.with(|c| c.del(keys))
    }

    /// Counters are Redis integers (`INCRBY`), as Spin's Redis store keeps them;
    /// guests only ever read them through `increment`.
    fn increment(&self, store: &str, key: &str, delta: i64) -> KvResult<i64> {
        self.with(|c| c.incr(full(store, key), delta))
    }

    fn compare_and_swap(&self, store: &str, key: &str, expected: Option<&[u8]>, new: &[u8]) -> KvResult<bool> {
        let key = full(store, key);
        match expected {
            Some(old) => self.with(|c| {
                let swapped: i64 = self.swap.key(&key).arg(old).arg(new).invoke(c)?;
                Ok(swapped == 1)
            }),
            None => self.with(|c| {
                let created: Option<String> = redis::cmd("SET").arg(&key).arg(new).arg("NX").query(c)?;
                Ok(created.is_some())
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Child, Command, Stdio};

    /// A throw-away `redis-server` on 127.0.0.1 (scripts/test.sh installs it).
    struct Server(Child, u16);

    impl Server {
        /// Starts Redis on a free port. Another test may take the port between
        /// its choice and Redis binding it (Redis then exits): that try is
        /// dropped and another port chosen. Ready once Redis itself answers.
        fn start() -> Server {
            for _ in 0..5 {
                let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
                let child = Command::new("redis-server")
                    .args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", "", "--appendonly", "no"])
                    .stdout(Stdio::null())
                    .spawn()
                    .expect("redis-server is installed");
                // Dropping the server kills and reaps the process, also if it never answers.
                let mut server = Server(child, port);
                for _ in 0..400 {
                    if server.0.try_wait().ok().flatten().is_some() {
                        break; // it could not bind the port
                    }
                    if answers_ping(port) && server.0.try_wait().ok().flatten().is_none() {
                        return server;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(25));
                }
            }
            panic!("redis-server did not start");
        }
    }

    /// Whether a Redis server answers PING on the port.
    fn answers_ping(port: u16) -> bool {
        use std::io::{Read, Write};
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return false };
        let _ = stream.set_read_timeout(Some(std::time::Duration::from_millis(500)));
        let mut reply = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok() && stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
    }

    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    const TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);

    fn signal(server: &Server, name: &str) {
        let sent = Command::new("kill").arg(format!("-{name}")).arg(server.0.id().to_string()).status().unwrap();
        assert!(sent.success());
    }

    #[test]
    fn a_frozen_redis_fails_fast_after_one_timeout_and_is_used_again_once_it_answers() {
        let server = Server::start();
        let kv = RedisKv::open(&format!("redis://127.0.0.1:{}", server.1), Some(TIMEOUT)).unwrap();
        kv.set("default", "k", b"a").unwrap();
        signal(&server, "STOP");
        let started = Instant::now();
        assert!(kv.get("default", "k").is_err());
        let first = started.elapsed();
        assert!(first >= TIMEOUT && first < TIMEOUT * 3, "the first call waits for its timeout: {first:?}");
        let started = Instant::now();
        assert_eq!(kv.get("default", "k").unwrap_err(), unavailable());
        assert!(started.elapsed() < Duration::from_millis(50), "later calls fail at once");
        signal(&server, "CONT");
        std::thread::sleep(COOL_DOWN + Duration::from_millis(100));
        assert_eq!(kv.get("default", "k").unwrap().as_deref(), Some(&b"a"[..]), "back after the cool-down");
    }

    #[test]
    fn a_command_redis_refuses_does_not_open_the_breaker() {
        let server = Server::start();
        let kv = RedisKv::open(&format!("redis://127.0.0.1:{}", server.1), Some(TIMEOUT)).unwrap();
        kv.set("default", "text", b"not a number").unwrap();
        assert!(kv.increment("default", "text", 1).is_err());
        assert!(!kv.0.breaker.is_open());
        assert_eq!(kv.increment("default", "n", 1).unwrap(), 1);
    }

    #[test]
    fn redis_store_keeps_spins_semantics() {
        let server = Server::start();
        let kv = RedisKv::open(&format!("redis://127.0.0.1:{}", server.1), Some(TIMEOUT)).unwrap();
        kv.set("default", "k", b"a").unwrap();
        assert_eq!(kv.get("default", "k").unwrap().unwrap(), b"a");
        assert!(kv.get("other", "k").unwrap().is_none(), "stores are separate");
        assert_eq!(kv.increment("default", "n", 5).unwrap(), 5);
        assert_eq!(kv.increment("default", "n", -2).unwrap(), 3);
        assert!(!kv.compare_and_swap("default", "k", Some(b"x"), b"b").unwrap());
        assert!(kv.compare_and_swap("default", "k", Some(b"a"), b"b").unwrap());
        assert!(kv.compare_and_swap("default", "new", None, b"1").unwrap());
        assert!(!kv.compare_and_swap("default", "new", None, b"2").unwrap());
        assert_eq!(kv.keys("default").unwrap(), ["k", "n", "new"]);
        kv.set_many("default", &[("a".into(), b"1".to_vec()), ("b".into(), b"2".to_vec())]).unwrap();
        assert_eq!(kv.get_many("default", &["a".into(), "z".into()]).unwrap()[0].1.as_deref(), Some(&b"1"[..]));
        kv.delete_many("default", &["a".into(), "b".into()]).unwrap();
        assert!(!kv.exists("default", "a").unwrap());
    }

    #[test]
    fn concurrent_compare_and_swap_creates_have_one_winner() {
        let server = Server::start();
        let kv = std::sync::Arc::new(RedisKv::open(&format!("redis://127.0.0.1:{}", server.1), Some(TIMEOUT)).unwrap());
        let threads: Vec<_> = (0..20)
            .map(|i| {
                let kv = kv.clone();
                std::thread::spawn(move || {
                    kv.compare_and_swap("default", "elected", None, format!("{i}").as_bytes()).unwrap()
                })
            })
            .collect();
        let winners = threads.into_iter().map(|t| t.join().unwrap()).filter(|won| *won).count();
        assert_eq!(winners, 1);
    }
}
