//! Key-value storage for guests: what a backend must do ([`KvBackend`]),
//! one operation as a value ([`KvOp`], so a backend can queue it and answer
//! later), the stores of a runtime config by label, and per-request counts.
//! The backends: [`SqliteKv`] (Spin's own file format) and
//! [`crate::kv_redis::RedisKv`].

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub use crate::kv_session::Session;
pub use crate::kv_sqlite::SqliteKv;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvError {
    /// The stored value is not a counter (8 little-endian bytes).
    NotACounter(String),
    Other(String),
}

impl std::fmt::Display for KvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotACounter(key) => write!(f, "the value of `{key}` is not a counter (8 little-endian bytes)"),
            Self::Other(message) => f.write_str(message),
        }
    }
}

pub type KvResult<T> = std::result::Result<T, KvError>;

/// What the guest interfaces need from a store; `store` is the label.
pub trait KvBackend: Send + Sync {
    /// Whether a store with this label exists (else guests get `no-such-store`).
    fn has_store(&self, store: &str) -> bool {
        store == "default"
    }
    fn get(&self, store: &str, key: &str) -> KvResult<Option<Vec<u8>>>;
    fn set(&self, store: &str, key: &str, value: &[u8]) -> KvResult<()>;
    fn delete(&self, store: &str, key: &str) -> KvResult<()>;
    fn exists(&self, store: &str, key: &str) -> KvResult<bool>;
    fn keys(&self, store: &str) -> KvResult<Vec<String>>;
    fn get_many(&self, store: &str, keys: &[String]) -> KvResult<Vec<(String, Option<Vec<u8>>)>>;
    fn set_many(&self, store: &str, entries: &[(String, Vec<u8>)]) -> KvResult<()>;
    fn delete_many(&self, store: &str, keys: &[String]) -> KvResult<()>;
    /// Adds `delta` to the counter (absent = 0); returns the new value.
    fn increment(&self, store: &str, key: &str, delta: i64) -> KvResult<i64>;
    /// Writes `new` if the key still holds `expected` (`None` = still absent).
    fn compare_and_swap(&self, store: &str, key: &str, expected: Option<&[u8]>, new: &[u8]) -> KvResult<bool>;

    /// Starts `op` and answers when it is done. By default it runs at once
    /// on the methods above, on the caller's thread; SQLite queues it when
    /// its writer is busy, and the guest's worker thread runs other requests
    /// meanwhile.
    fn submit(&self, store: &str, op: KvOp) -> Pending {
        Pending::ready(op.run_on(self, store))
    }

    /// [`KvBackend::submit`] on behalf of a request. A backend may then
    /// answer before its write is durable, if it records in `session` what
    /// the request must wait for ([`Session::settle`]) before it answers.
    fn submit_in(&self, store: &str, op: KvOp, session: &Arc<Session>) -> Pending {
        let _ = session;
        self.submit(store, op)
    }
}

/// An operation's answer, once the backend has it (committed, for a write).
/// Most answers are there at once: they are not boxed as futures.
pub enum Pending {
    /// Answered already (taken when polled).
    Ready(Option<KvResult<KvOut>>),
    /// Answered once the backend gets to it.
    Later(Pin<Box<dyn Future<Output = KvResult<KvOut>> + Send>>),
}

impl Pending {
    pub fn ready(out: KvResult<KvOut>) -> Self {
        Self::Ready(Some(out))
    }
}

impl Future for Pending {
    type Output = KvResult<KvOut>;

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        match self.get_mut() {
            Self::Ready(out) => {
                std::task::Poll::Ready(out.take().unwrap_or_else(|| Err(KvError::Other("answer already taken".into()))))
            }
            Self::Later(future) => future.as_mut().poll(cx),
        }
    }
}

/// One operation on one store, as a value.
#[derive(Debug, Clone)]
pub enum KvOp {
    Get(String),
    Set(String, Vec<u8>),
    Delete(String),
    Exists(String),
    Keys,
    GetMany(Vec<String>),
    SetMany(Vec<(String, Vec<u8>)>),
    DeleteMany(Vec<String>),
    /// Adds the delta to a counter; a delta of 0 only reads it.
    Increment(String, i64),
    /// Writes `new` if the key still holds `expected` (`None` = still absent);
    /// a failed swap answers the value that is there instead.
    Swap {
        key: String,
        expected: Option<Vec<u8>>,
        new: Vec<u8>,
    },
}

/// What a [`KvOp`] answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvOut {
    Value(Option<Vec<u8>>),
    Done,
    Exists(bool),
    Keys(Vec<String>),
    Values(Vec<(String, Option<Vec<u8>>)>),
    Counter(i64),
    Swapped,
    NotSwapped(Option<Vec<u8>>),
}

impl KvOp {
    pub fn writes(&self) -> bool {
        match self {
            Self::Get(_) | Self::Exists(_) | Self::Keys | Self::GetMany(_) => false,
            Self::Increment(_, delta) => *delta != 0,
            Self::Set(..) | Self::Delete(_) | Self::SetMany(_) | Self::DeleteMany(_) | Self::Swap { .. } => true,
        }
    }

    /// Runs on a backend's blocking methods.
    pub fn run_on<B: KvBackend + ?Sized>(self, kv: &B, store: &str) -> KvResult<KvOut> {
        Ok(match self {
            Self::Get(key) => KvOut::Value(kv.get(store, &key)?),
            Self::Set(key, value) => kv.set(store, &key, &value).map(|()| KvOut::Done)?,
            Self::Delete(key) => kv.delete(store, &key).map(|()| KvOut::Done)?,
            Self::Exists(key) => KvOut::Exists(kv.exists(store, &key)?),
            Self::Keys => KvOut::Keys(kv.keys(store)?),
            Self::GetMany(keys) => KvOut::Values(kv.get_many(store, &keys)?),
            Self::SetMany(entries) => kv.set_many(store, &entries).map(|()| KvOut::Done)?,
            Self::DeleteMany(keys) => kv.delete_many(store, &keys).map(|()| KvOut::Done)?,
            Self::Increment(key, delta) => KvOut::Counter(kv.increment(store, &key, delta)?),
            Self::Swap { key, expected, new } => match kv.compare_and_swap(store, &key, expected.as_deref(), &new)? {
                true => KvOut::Swapped,
                false => KvOut::NotSwapped(kv.get(store, &key)?),
            },
        })
    }
}

/// A backend answered an operation with another operation's kind of answer
/// (a bug); the message names the kind only, never a stored value.
fn unexpected(out: KvOut) -> KvError {
    let kind = match out {
        KvOut::Value(_) => "value",
        KvOut::Done => "done",
        KvOut::Exists(_) => "exists",
        KvOut::Keys(_) => "keys",
        KvOut::Values(_) => "values",
        KvOut::Counter(_) => "counter",
        KvOut::Swapped | KvOut::NotSwapped(_) => "swap",
    };
    KvError::Other(format!("unexpected key-value answer ({kind})"))
}

impl KvOut {
    pub fn value(self) -> KvResult<Option<Vec<u8>>> {
        match self {
            Self::Value(value) => Ok(value),
            other => Err(unexpected(other)),
        }
    }
    pub fn done(self) -> KvResult<()> {
        match self {
            Self::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }
    pub fn exists(self) -> KvResult<bool> {
        match self {
            Self::Exists(exists) => Ok(exists),
            other => Err(unexpected(other)),
        }
    }
    pub fn keys(self) -> KvResult<Vec<String>> {
        match self {
            Self::Keys(keys) => Ok(keys),
            other => Err(unexpected(other)),
        }
    }
    pub fn values(self) -> KvResult<Vec<(String, Option<Vec<u8>>)>> {
        match self {
            Self::Values(values) => Ok(values),
            other => Err(unexpected(other)),
        }
    }
    pub fn counter(self) -> KvResult<i64> {
        match self {
            Self::Counter(n) => Ok(n),
            other => Err(unexpected(other)),
        }
    }
    pub fn swapped(self) -> KvResult<bool> {
        match self {
            Self::Swapped => Ok(true),
            Self::NotSwapped(_) => Ok(false),
            other => Err(unexpected(other)),
        }
    }
}

/// The stores of a runtime config, by label; each label goes to its backend.
pub struct Stores {
    by_label: std::collections::BTreeMap<String, std::sync::Arc<dyn KvBackend>>,
}

impl Stores {
    pub fn new(by_label: std::collections::BTreeMap<String, std::sync::Arc<dyn KvBackend>>) -> Self {
        Self { by_label }
    }

    fn backend(&self, store: &str) -> KvResult<&dyn KvBackend> {
        self.by_label.get(store).map(|b| b.as_ref()).ok_or_else(|| KvError::Other(format!("no store `{store}`")))
    }
}

impl KvBackend for Stores {
    fn has_store(&self, store: &str) -> bool {
        self.by_label.contains_key(store)
    }
    fn get(&self, store: &str, key: &str) -> KvResult<Option<Vec<u8>>> {
        self.backend(store)?.get(store, key)
    }
    fn set(&self, store: &str, key: &str, value: &[u8]) -> KvResult<()> {
        self.backend(store)?.set(store, key, value)
    }
    fn delete(&self, store: &str, key: &str) -> KvResult<()> {
        self.backend(store)?.delete(store, key)
    }
    fn exists(&self, store: &str, key: &str) -> KvResult<bool> {
        self.backend(store)?.exists(store, key)
    }
    fn keys(&self, store: &str) -> KvResult<Vec<String>> {
        self.backend(store)?.keys(store)
    }
    fn get_many(&self, store: &str, keys: &[String]) -> KvResult<Vec<(String, Option<Vec<u8>>)>> {
        self.backend(store)?.get_many(store, keys)
    }
    fn set_many(&self, store: &str, entries: &[(String, Vec<u8>)]) -> KvResult<()> {
        self.backend(store)?.set_many(store, entries)
    }
    fn delete_many(&self, store: &str, keys: &[String]) -> KvResult<()> {
        self.backend(store)?.delete_many(store, keys)
    }
    fn increment(&self, store: &str, key: &str, delta: i64) -> KvResult<i64> {
        self.backend(store)?.increment(store, key, delta)
    }
    fn compare_and_swap(&self, store: &str, key: &str, expected: Option<&[u8]>, new: &[u8]) -> KvResult<bool> {
        self.backend(store)?.compare_and_swap(store, key, expected, new)
    }
    fn submit(&self, store: &str, op: KvOp) -> Pending {
        match self.backend(store) {
            Ok(backend) => backend.submit(store, op),
            Err(e) => Pending::ready(Err(e)),
        }
    }
    fn submit_in(&self, store: &str, op: KvOp, session: &Arc<Session>) -> Pending {
        match self.backend(store) {
            Ok(backend) => backend.submit_in(store, op, session),
            Err(e) => Pending::ready(Err(e)),
        }
    }
}

/// What one request did to the store: shown on the host's access-log line.
#[derive(Default)]
pub struct KvStats {
    reads: AtomicU64,
    writes: AtomicU64,
    bytes_read: AtomicU64,
    bytes_written: AtomicU64,
    /// Time spent in the store (waiting for it included).
    micros: AtomicU64,
}

impl std::fmt::Display for KvStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
        write!(
            f,
            "kv {}r/{}w {}B/{}B {:.1}ms",
            load(&self.reads),
            load(&self.writes),
            load(&self.bytes_read),
            load(&self.bytes_written),
            load(&self.micros) as f64 / 1000.0
        )
    }
}

impl KvStats {
    fn read(&self, bytes: usize) {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.bytes_read.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    fn wrote(&self, bytes: usize) {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.bytes_written.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    fn timed<T>(&self, op: impl FnOnce() -> T) -> T {
        let started = std::time::Instant::now();
        let result = op();
        self.waited(started);
        result
    }

    fn waited(&self, since: std::time::Instant) {
        self.micros.fetch_add(since.elapsed().as_micros() as u64, Ordering::Relaxed);
    }

    /// Counts what `op` writes (and the reads whose size is known before).
    fn before(&self, op: &KvOp) {
        match op {
            KvOp::Get(_) | KvOp::GetMany(_) => {}
            KvOp::Exists(_) | KvOp::Keys => self.read(0),
            KvOp::Set(_, value) => self.wrote(value.len()),
            KvOp::Delete(_) => self.wrote(0),
            KvOp::SetMany(entries) => entries.iter().for_each(|(_, v)| self.wrote(v.len())),
            KvOp::DeleteMany(keys) => keys.iter().for_each(|_| self.wrote(0)),
            // A delta of 0 reads the counter.
            KvOp::Increment(_, 0) => self.read(8),
            KvOp::Increment(..) => self.wrote(8),
            KvOp::Swap { new, .. } => self.wrote(new.len()),
        }
    }

    /// Counts the values an answer carries.
    /// Counts an answer that took since `started` (what it read, the time), and hands it on.
    fn answered(&self, started: std::time::Instant, out: KvResult<KvOut>) -> KvResult<KvOut> {
        self.waited(started);
        if let Ok(out) = &out {
            self.after(out);
        }
        out
    }

    fn after(&self, out: &KvOut) {
        match out {
            KvOut::Value(value) | KvOut::NotSwapped(value) => self.read(size(value)),
            KvOut::Values(values) => values.iter().for_each(|(_, v)| self.read(size(v))),
            _ => {}
        }
    }
}

/// A request's view of the stores, counting what it reads and writes; its
/// asynchronous operations run in its session.
pub struct Counted {
    pub inner: Arc<dyn KvBackend>,
    pub stats: Arc<KvStats>,
    pub session: Arc<Session>,
}

fn size(value: &Option<Vec<u8>>) -> usize {
    value.as_ref().map_or(0, Vec::len)
}

impl Counted {
    /// The blocking path, counted by the same rules as [`KvBackend::submit`].
    fn call(&self, store: &str, op: KvOp) -> KvResult<KvOut> {
        self.stats.before(&op);
        let out = self.stats.timed(|| op.run_on(self.inner.as_ref(), store))?;
        self.stats.after(&out);
        Ok(out)
    }
}

impl KvBackend for Counted {
    fn has_store(&self, store: &str) -> bool {
        self.inner.has_store(store)
    }
    fn get(&self, store: &str, key: &str) -> KvResult<Option<Vec<u8>>> {
        self.call(store, KvOp::Get(key.into()))?.value()
    }
    fn set(&self, store: &str, key: &str, value: &[u8]) -> KvResult<()> {
        self.call(store, KvOp::Set(key.into(), value.into()))?.done()
    }
    fn delete(&self, store: &str, key: &str) -> KvResult<()> {
        self.call(store, KvOp::Delete(key.into()))?.done()
    }
    fn exists(&self, store: &str, key: &str) -> KvResult<bool> {
        self.call(store, KvOp::Exists(key.into()))?.exists()
    }
    fn keys(&self, store: &str) -> KvResult<Vec<String>> {
        self.call(store, KvOp::Keys)?.keys()
    }
    fn get_many(&self, store: &str, keys: &[String]) -> KvResult<Vec<(String, Option<Vec<u8>>)>> {
        self.call(store, KvOp::GetMany(keys.to_vec()))?.values()
    }
    fn set_many(&self, store: &str, entries: &[(String, Vec<u8>)]) -> KvResult<()> {
        self.call(store, KvOp::SetMany(entries.to_vec()))?.done()
    }
    fn delete_many(&self, store: &str, keys: &[String]) -> KvResult<()> {
        self.call(store, KvOp::DeleteMany(keys.to_vec()))?.done()
    }
    fn increment(&self, store: &str, key: &str, delta: i64) -> KvResult<i64> {
        self.call(store, KvOp::Increment(key.into(), delta))?.counter()
    }
    fn compare_and_swap(&self, store: &str, key: &str, expected: Option<&[u8]>, new: &[u8]) -> KvResult<bool> {
        let op = KvOp::Swap { key: key.into(), expected: expected.map(<[u8]>::to_vec), new: new.into() };
        self.call(store, op)?.swapped()
    }
    fn submit(&self, store: &str, op: KvOp) -> Pending {
        self.stats.before(&op);
        let started = std::time::Instant::now();
        match self.inner.submit_in(store, op, &self.session) {
            Pending::Ready(Some(out)) => Pending::ready(self.stats.answered(started, out)),
            pending => {
                let stats = self.stats.clone();
                Pending::Later(Box::pin(async move { stats.answered(started, pending.await) }))
            }
        }
    }
}
