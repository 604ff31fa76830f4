//! Key-value data in Redis, shared by several host processes (scale-out).
//! Every operation the guests use is atomic across processes: `INCRBY` for
//! counters, a Lua script for compare-and-swap, `SET NX` for exclusive creates.
//! Keys are `{store}:{key}`, so several labels can share one database.

use anyhow::{Context, Result};
use redis::{Client, Commands, Connection, Script};
use std::sync::Mutex;

use crate::kv::{KvBackend, KvError, KvResult};

/// Idle connections kept for reuse.
const POOL_SIZE: usize = 16;

pub struct RedisKv {
    client: Client,
    idle: Mutex<Vec<Connection>>,
    swap: Script,
}

impl From<redis::RedisError> for KvError {
    fn from(e: redis::RedisError) -> Self {
        KvError::Other(format!("redis: {e}"))
    }
}

fn full(store: &str, key: &str) -> String {
    format!("{store}:{key}")
}

impl RedisKv {
    pub fn open(url: &str) -> Result<Self> {
        let client = Client::open(url).with_context(|| format!("invalid Redis url `{url}`"))?;
        let connection = client.get_connection().with_context(|| format!("cannot connect to Redis at {url}"))?;
        Ok(Self {
            client,
            idle: Mutex::new(vec![connection]),
            // Replaces the value only if it is still the one the caller saw.
            swap: Script::new(
                "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2]) return 1 else return 0 end",
            ),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> redis::RedisResult<T>) -> KvResult<T> {
        let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut connection = match pooled {
            Some(c) => c,
            None => self.client.get_connection()?,
        };
        let result = f(&mut connection);
        // A connection that failed may be broken: only healthy ones go back.
        if result.is_ok() {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            if idle.len() < POOL_SIZE {
                idle.push(connection);
            }
        }
        Ok(result?)
    }
}

impl KvBackend for RedisKv {
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

    #[test]
    fn redis_store_keeps_spins_semantics() {
        let server = Server::start();
        let kv = RedisKv::open(&format!("redis://127.0.0.1:{}", server.1)).unwrap();
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
        let kv = std::sync::Arc::new(RedisKv::open(&format!("redis://127.0.0.1:{}", server.1)).unwrap());
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
