//! Key-value data in an SQLite file in Spin's own schema
//! (`spin_key_value(store, key, value)`), so a database written here works
//! with `spin up` and the other way round.
//!
//! Operations queue up for one writing connection. Whoever finds it free
//! runs, in order, everything queued so far in the open transaction (one
//! transaction, one set of file locks and one WAL append for many requests'
//! operations); the others wait for their answers without holding their
//! thread. Uncontended, an operation runs at once on its caller's thread.
//! An operation made on behalf of a request ([`Session`]) is answered as
//! soon as it has run; the transaction commits once few of the requests
//! that used it still run and the others wait for it ([`Sharing`]), or
//! after [`MAX_OPEN`], and the request's response waits for that commit
//! (see `kv_session`). Other callers are answered
//! after the commit. Reads made while the store is quiet (nothing queued,
//! no transaction open, no recent write) run on a pooled read connection
//! instead, in parallel.
//!
//! Durability: WAL with `synchronous=NORMAL` keeps every committed write
//! through a killed process (only an OS crash can lose the last ones). The
//! writer's WAL frames of one commit reach the file in one write, before
//! the commit returns ([`crate::wal_batch`]).
//! Atomicity: the operations run one at a time on one connection, inside
//! `BEGIN IMMEDIATE` transactions, so `increment` and `compare_and_swap`
//! are atomic also against other processes using the same file.

use anyhow::{Context, Result};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::VecDeque;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::kv::{KvBackend, KvError, KvOp, KvOut, KvResult, Pending};
use crate::kv_session::{self, Session, Transactions};

impl From<rusqlite::Error> for KvError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Other(format!("sqlite: {e}"))
    }
}

pub struct SqliteKv {
    inner: Arc<Inner>,
    /// Stopped (and waited for) when the store is dropped.
    _checkpointer: Option<Checkpointer>,
}

pub struct Inner {
    /// The connection every write (and every read under load) goes through.
    writer: Mutex<Writer>,
    queue: Mutex<VecDeque<Job>>,
    /// Connections for reads, which run at once on the caller's thread (a
    /// file store only: an in-memory database is private to its connection).
    readers: Option<Readers>,
    /// Operations queued and not yet answered.
    queued: Arc<AtomicUsize>,
    /// When the last write was handed over (ms since `started`).
    last_write_ms: AtomicU64,
    started: Instant,
    /// Transactions ended (committed or failed).
    #[cfg_attr(not(test), allow(dead_code))]
    commits: AtomicU64,
    /// Set by the checkpointer when the WAL has grown past [`RESTART_WAL_BYTES`].
    catch_up: Arc<AtomicBool>,
    /// The open transaction and what decides when it commits.
    epochs: Mutex<Epochs>,
    /// Whether a transaction is open (then reads must not run beside it).
    open: AtomicBool,
    /// The last transaction ended: transactions are numbered from 1 and run
    /// one at a time, so every one up to it is committed or failed.
    decided: tokio::sync::watch::Sender<u64>,
    /// When a transaction shared by requests commits.
    sharing: Sharing,
    /// This store, for the sessions and timers that refer to it.
    me: Weak<Inner>,
    /// Makes the next commit fail, as a full disk would.
    #[cfg(test)]
    pub fail_next_commit: AtomicBool,
}

/// The writing connection, and the answers that wait for its commit.
struct Writer {
    connection: Connection,
    /// Answers to callers without a session, given once their operation is
    /// committed (or its transaction failed).
    held: Vec<(Answer, KvResult<KvOut>)>,
}

/// The transaction open on the writer, if any.
#[derive(Default)]
struct Epochs {
    open: Option<u64>,
    /// The number of the newest transaction (open or ended).
    newest: u64,
    /// Sessions that had answers from the open transaction and have not yet
    /// waited for it: while any does, more of its operations may come.
    running: usize,
    /// Commit at the next chance (held answers, or open for `max_open`).
    due: bool,
    /// Whether the open transaction's `max_open` timer is set.
    timed: bool,
    ops: usize,
    /// Transactions that failed (rolled back): rare, kept to refuse the
    /// later operations of requests that saw them.
    failed: Vec<u64>,
}

type Answer = Box<dyn FnOnce(KvResult<KvOut>) + Send>;

/// What running an operation gives its caller.
enum Ran {
    /// An answer to give now: an operation of a request (whose response
    /// waits for the commit instead), or a failure.
    Now(KvResult<KvOut>),
    /// An answer to give once the transaction commits (a caller without a session).
    AfterCommit(KvResult<KvOut>),
}

/// A queued operation, whom to answer, and on whose behalf.
struct Job {
    store: String,
    op: KvOp,
    answer: Answer,
    /// Present: answered at once, and the session waits for the commit
    /// before the request answers. Absent: answered after the commit.
    session: Option<Arc<Session>>,
}

/// The most operations run in one go: bounds how long the queue waits.
const MAX_BATCH: usize = 64;

/// The most operations in one transaction: bounds its size.
const MAX_TXN_OPS: usize = 512;

/// Longest a transaction stays open while requests that used it are still
/// running. Every operation of every request running meanwhile joins it, so
/// one commit (one set of file locks, one WAL append) serves many requests;
/// those requests' answers wait for it, so this is added latency at most.
/// When few of the requests that used it still run, it commits at once
/// (see [`Sharing`]).
const MAX_OPEN: Duration = Duration::from_millis(2);

/// How often the WAL is copied back into the database file. A page written
/// many times between two checkpoints is copied once: every 0.5 s instead of
/// 0.1 s saved about 2 `pwrite`s and 2 `pread`s per customer-flow request
/// (16 clients), with no longer stalls (the syncs run on the checkpointer's
/// own connection, not in any commit).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// WAL size past which the writer itself catches up. Under steady writes
/// the background checkpoint never sees the WAL fully copied back at the
/// moment a transaction starts, which is when SQLite rewinds the WAL;
/// without this the file grows by every byte written (tens of MB/s). The
/// catch-up's sync holds the writes up for a moment, hence not too often.
const RESTART_WAL_BYTES: i64 = 64 << 20;

/// Before the writer is asked to catch up, background checkpoints run back
/// to back until one starts with at most this many frames left to copy, and
/// then the database file is synced: the writer's own checkpoint (which
/// every request waits for) copies and syncs only what was committed since.
/// Measured on 2 cores under the flows at 16 clients: a catch-up that
/// copied the last 0.5 s and synced every page copied since the last
/// catch-up held the writer 10–26 ms; now 0.5–5 ms.
const CATCH_UP_FRAMES: i64 = 256;

/// Background checkpoints in a row at most before the writer catches up.
const CATCH_UP_ROUNDS: usize = 8;

/// Page size of a new database file (SQLite's default, and Spin's). Smaller
/// pages write fewer bytes per commit but more of them: a value of a few KB
/// (an open set, a day's metrics) spans a chain of overflow pages, each one
/// WAL frame and two `pwrite`s, and each B-tree rebalance makes the commit
/// scan the whole page cache, 4× larger in pages. Measured with the WAL bounded: 1 KiB
/// pages cost the customer flow about 15 % more CPU. An existing file keeps
/// its page size.
const PAGE_SIZE: i64 = 4096;

/// Page cache of the writer's connection, in KiB.
const CACHE_KIB: i64 = 8 * 1024;

/// Checkpoints the WAL on its own connection and thread. SQLite would
/// otherwise do it inside whichever commit crosses 1,000 pages, syncing the
/// file while that commit (and every request waiting on it) waits.
/// A passive checkpoint never blocks readers or writers.
struct Checkpointer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Checkpointer {
    /// Waits for the last checkpoint, so that once the store is dropped no
    /// connection to the file is left open (the WAL files are gone).
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn spawn_checkpointer(path: &Path, catch_up: Arc<AtomicBool>, restart_wal_bytes: i64) -> Result<Checkpointer> {
    let connection = Connection::open(path)?;
    connection.busy_timeout(Duration::from_secs(5))?;
    let page_size: i64 = connection.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    // (frames in the WAL, frames copied back)
    let checkpoint = |c: &Connection| -> rusqlite::Result<(i64, i64)> {
        c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| Ok((r.get(1)?, r.get(2)?)))
    };
    let (stop, stopped) = mpsc::channel::<()>();
    let thread = std::thread::Builder::new().name("kv-checkpoint".into()).spawn(move || loop {
        let done = matches!(stopped.recv_timeout(CHECKPOINT_EVERY), Err(mpsc::RecvTimeoutError::Disconnected));
        let mut copied_before = None;
        for round in 1.. {
            let (frames, copied) = match checkpoint(&connection) {
                Ok(counts) => counts,
                Err(e) => {
                    eprintln!("[host] key-value checkpoint failed: {e}");
                    break;
                }
            };
            let uncopied = copied_before.map(|c| frames - c);
            match after_checkpoint(frames * page_size, restart_wal_bytes, round, uncopied) {
                Then::Wait => break,
                Then::Again => copied_before = Some(copied),
                // Already asked, and nothing committed since: no sync again
                // (an idle store with a long WAL would sync every 0.5 s).
                Then::CatchUp if catch_up.load(Ordering::Relaxed) => break,
                Then::CatchUp => {
                    // SQLite syncs the database file only at the end of a
                    // checkpoint that copies the whole WAL, which under
                    // steady writes only the writer's does.
                    if let Err(e) = sync_database(&connection) {
                        eprintln!("[host] key-value checkpoint failed: {e}");
                    }
                    catch_up.store(true, Ordering::Relaxed);
                    break;
                }
            }
        }
        if done {
            break;
        }
    })?;
    Ok(Checkpointer { stop: Some(stop), thread: Some(thread) })
}

/// What the checkpointer does after a background checkpoint.
#[derive(Debug, PartialEq)]
enum Then {
    /// Sleep until the next one.
    Wait,
    /// Checkpoint again at once.
    Again,
    /// Sync the database file and ask the writer to catch up.
    CatchUp,
}

/// `uncopied`: frames this round found that the previous round had not
/// copied (none in the first round). Few means few were committed while
/// the previous round ran, so this one too left few behind.
fn after_checkpoint(wal_bytes: i64, restart_wal_bytes: i64, round: usize, uncopied: Option<i64>) -> Then {
    if wal_bytes <= restart_wal_bytes {
        Then::Wait
    } else if round >= CATCH_UP_ROUNDS || uncopied.is_some_and(|n| n <= CATCH_UP_FRAMES) {
        Then::CatchUp
    } else {
        Then::Again
    }
}

/// Syncs the data of `connection`'s database file (as SQLite does at the
/// end of a checkpoint that copies the whole WAL back).
fn sync_database(connection: &Connection) -> rusqlite::Result<()> {
    use rusqlite::ffi;
    let mut file: *mut ffi::sqlite3_file = std::ptr::null_mut();
    // SAFETY: the connection is open while borrowed, and SQLite hands out
    // the database file object it owns, whose methods are set once open.
    let rc = unsafe {
        let op = ffi::SQLITE_FCNTL_FILE_POINTER;
        match ffi::sqlite3_file_control(connection.handle(), c"main".as_ptr(), op, (&raw mut file).cast()) {
            ffi::SQLITE_OK if !file.is_null() && !(*file).pMethods.is_null() => {
                (*(*file).pMethods).xSync.map_or(ffi::SQLITE_OK, |sync| sync(file, ffi::SQLITE_SYNC_NORMAL))
            }
            ffi::SQLITE_OK => ffi::SQLITE_OK,
            rc => rc,
        }
    };
    match rc {
        ffi::SQLITE_OK => Ok(()),
        rc => Err(rusqlite::Error::SqliteFailure(ffi::Error::new(rc), None)),
    }
}

/// When a transaction shared by the requests running at the same time
/// commits (besides at [`MAX_TXN_OPS`]).
#[derive(Debug, Clone, Copy)]
pub struct Sharing {
    /// Longest it stays open while requests that used it still run.
    pub max_open: Duration,
    /// It commits as soon as fewer of the requests that used it than this
    /// are still running (the others wait for it). Waiting for the last
    /// few leaves the CPUs idle: the waiting requests' clients cannot send
    /// their next requests until the commit, and the few still running take
    /// turns at the writer. 1: only once every one of them waits.
    pub min_running: usize,
}

impl Default for Sharing {
    /// Two running requests per CPU: measured on 2 cores, committing once
    /// fewer than 4 ran left 0.08–0.15 of the CPUs idle under the customer
    /// flow at 16 clients instead of 0.18–0.24, and raised the flow from
    /// 32–42 % to 36–41 % of the no-op's requests/s (six A/B pairs).
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self { max_open: MAX_OPEN, min_running: 2 * cpus }
    }
}

impl SqliteKv {
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, RESTART_WAL_BYTES, Sharing::default())
    }

    fn open_with(path: &Path, restart_wal_bytes: i64, sharing: Sharing) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        // The writer gathers each commit's WAL frames into one write (see `wal_batch`).
        let connection = if crate::wal_batch::register() {
            Connection::open_with_flags_and_vfs(path, rusqlite::OpenFlags::default(), crate::wal_batch::NAME)
        } else {
            Connection::open(path)
        }
        .with_context(|| format!("cannot open key-value database {}", path.display()))?;
        prepare(&connection).with_context(|| format!("cannot prepare key-value database {}", path.display()))?;
        connection.pragma_update(None, "wal_autocheckpoint", 0)?;
        // When the WAL starts over, its file is cut back to this size: above
        // what it reaches between two catch-ups (about 100 MB under the
        // benchmark's flows), so that in steady use it is rewritten in place.
        // Cutting it (the first commit after a catch-up did) took 13–17 ms
        // on ext4 mounted with `discard` while every request waited, and
        // growing it again allocates blocks.
        connection.pragma_update(None, "journal_size_limit", 2 * restart_wal_bytes)?;
        // Every write goes through this connection: room for the working set
        // (SQLite's default is 2 MB; beyond it pages are re-read from the WAL).
        connection.pragma_update(None, "cache_size", CACHE_KIB.saturating_neg())?;
        let readers = Readers { path: path.to_path_buf(), idle: Mutex::new(Vec::new()) };
        let catch_up = Arc::new(AtomicBool::new(false));
        let checkpointer = spawn_checkpointer(path, catch_up.clone(), restart_wal_bytes)?;
        Ok(Self::start(connection, Some(readers), catch_up, Some(checkpointer), sharing))
    }

    /// A throw-away store (tests, `measure`).
    pub fn in_memory() -> Result<Self> {
        Self::in_memory_with(Sharing::default())
    }

    /// A throw-away store whose shared transactions commit as `sharing` says.
    pub fn in_memory_with(sharing: Sharing) -> Result<Self> {
        let connection = Connection::open_in_memory()?;
        prepare(&connection)?;
        Ok(Self::start(connection, None, Arc::default(), None, sharing))
    }

    fn start(
        connection: Connection,
        readers: Option<Readers>,
        catch_up: Arc<AtomicBool>,
        checkpointer: Option<Checkpointer>,
        sharing: Sharing,
    ) -> Self {
        let inner = Arc::new_cyclic(|me| Inner {
            writer: Mutex::new(Writer { connection, held: Vec::new() }),
            queue: Mutex::new(VecDeque::new()),
            readers,
            queued: Arc::new(AtomicUsize::new(0)),
            last_write_ms: AtomicU64::new(0),
            started: Instant::now(),
            commits: AtomicU64::new(0),
            catch_up,
            epochs: Mutex::new(Epochs::default()),
            open: AtomicBool::new(false),
            decided: tokio::sync::watch::Sender::new(0),
            sharing,
            me: me.clone(),
            #[cfg(test)]
            fail_next_commit: AtomicBool::new(false),
        });
        Self { inner, _checkpointer: checkpointer }
    }
}

impl std::ops::Deref for SqliteKv {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.inner
    }
}

impl Drop for SqliteKv {
    /// Commits the open transaction: what it holds was answered to requests
    /// still running, or whose responses are waiting for it.
    fn drop(&mut self) {
        let mut writer = lock(&self.inner.writer);
        self.inner.commit(&mut writer);
    }
}

impl Inner {
    /// The reader to run `op` at once on this thread, if it should: a read
    /// while the store is quiet (nothing queued, no write for a moment, no
    /// transaction open). It then runs beside other reads instead of
    /// queuing for the writer; under writes the readers' caches are stale
    /// anyway, and reads batch with the writes on the writer's warm
    /// connection. Never while a transaction is open: the read would miss
    /// the writes it holds, which its caller may already have seen.
    fn reader_for(&self, op: &KvOp) -> Option<&Readers> {
        let quiet = || {
            let now = self.started.elapsed().as_millis() as u64;
            self.queued.load(Ordering::Acquire) == 0
                && !self.open.load(Ordering::Acquire)
                && now.saturating_sub(self.last_write_ms.load(Ordering::Relaxed)) >= QUIET_MS
        };
        self.readers.as_ref().filter(|_| !op.writes() && quiet())
    }

    fn enqueue(&self, store: &str, op: KvOp, answer: Answer, session: Option<Arc<Session>>) {
        self.queued.fetch_add(1, Ordering::AcqRel);
        if op.writes() {
            self.last_write_ms.store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
        }
        let queued = self.queued.clone();
        let answer: Answer = Box::new(move |out| {
            queued.fetch_sub(1, Ordering::AcqRel);
            answer(out)
        });
        lock(&self.queue).push_back(Job { store: store.to_string(), op, answer, session });
        self.pump();
    }

    /// Runs the queued operations, and commits if it is time, unless
    /// someone else holds the writer. If someone does, that one runs ours
    /// too: it looks at the queue (and whether to commit) again after
    /// letting go, so nothing is left behind.
    fn pump(&self) {
        loop {
            let Some(mut writer) = self.try_writer() else { return };
            loop {
                let batch: Vec<Job> = {
                    let mut queue = lock(&self.queue);
                    let n = queue.len().min(MAX_BATCH);
                    queue.drain(..n).collect()
                };
                if batch.is_empty() {
                    break;
                }
                for job in batch {
                    self.run_job(&mut writer, job);
                }
                if lock(&self.epochs).ops >= MAX_TXN_OPS {
                    self.commit(&mut writer);
                }
            }
            if self.commit_wanted() {
                self.commit(&mut writer);
            }
            drop(writer);
            if lock(&self.queue).is_empty() && !self.commit_wanted() {
                return;
            }
        }
    }

    /// The writer, unless someone else holds it.
    fn try_writer(&self) -> Option<std::sync::MutexGuard<'_, Writer>> {
        match self.writer.try_lock() {
            Ok(writer) => Some(writer),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    /// Runs a queued operation and answers it (now, or after the commit).
    fn run_job(&self, writer: &mut Writer, job: Job) {
        let Job { store, op, answer, session } = job;
        match self.run_op(writer, &store, op, session.as_ref()) {
            Ran::Now(out) => answer(out),
            Ran::AfterCommit(out) => writer.held.push((answer, out)),
        }
    }

    /// Runs one operation in the open transaction (opening one if needed).
    fn run_op(&self, writer: &mut Writer, store: &str, op: KvOp, session: Option<&Arc<Session>>) -> Ran {
        let me: Option<Arc<dyn Transactions>> = match session {
            Some(_) => self.me.upgrade().map(|me| me as Arc<dyn Transactions>),
            None => None,
        };
        if let (Some(session), Some(me)) = (session, &me) {
            if session.lost_writes_in(me) {
                return Ran::Now(Err(kv_session::lost()));
            }
        }
        let epoch = match self.begin(writer) {
            Ok(epoch) => epoch,
            Err(e) => return Ran::Now(Err(e)),
        };
        let out = run(&writer.connection, store, op);
        if let Err(e) = &out {
            if writer.connection.is_autocommit() {
                // An I/O error (disk full, …) rolled the whole transaction back.
                let e = e.clone();
                self.end(writer, epoch, Err(e));
                return Ran::Now(out);
            }
        }
        let mut epochs = lock(&self.epochs);
        epochs.ops += 1;
        match (session, me) {
            (Some(session), Some(me)) => {
                if session.enter(&me, epoch) {
                    epochs.running += 1;
                }
                let start_timer = !std::mem::replace(&mut epochs.timed, true);
                drop(epochs);
                if start_timer {
                    self.commit_after(self.sharing.max_open, epoch);
                }
                Ran::Now(out)
            }
            _ => {
                epochs.due = true;
                Ran::AfterCommit(out)
            }
        }
    }

    /// The open transaction's number; begins one if none is open.
    fn begin(&self, writer: &Writer) -> KvResult<u64> {
        if let Some(epoch) = lock(&self.epochs).open {
            return Ok(epoch);
        }
        // A write transaction takes the write lock at once (other processes
        // on the file wait for it, up to the busy timeout) instead of failing late.
        writer.connection.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        let mut epochs = lock(&self.epochs);
        epochs.newest += 1;
        let epoch = epochs.newest;
        *epochs = Epochs {
            open: Some(epoch),
            newest: epoch,
            failed: std::mem::take(&mut epochs.failed),
            ..Epochs::default()
        };
        self.open.store(true, Ordering::Release);
        Ok(epoch)
    }

    fn commit_wanted(&self) -> bool {
        let epochs = lock(&self.epochs);
        epochs.open.is_some() && (epochs.running == 0 || epochs.due || epochs.ops >= MAX_TXN_OPS)
    }

    /// Commits the open transaction, if any, and answers what waited for it.
    fn commit(&self, writer: &mut Writer) {
        let Some(epoch) = lock(&self.epochs).open else { return };
        #[cfg(test)]
        if self.fail_next_commit.swap(false, Ordering::Relaxed) {
            let _ = writer.connection.execute_batch("ROLLBACK");
            return self.end(writer, epoch, Err(KvError::Other("sqlite: database or disk is full".into())));
        }
        match writer.connection.prepare_cached("COMMIT").and_then(|mut s| s.execute([])) {
            Ok(_) => {
                self.end(writer, epoch, Ok(()));
                if self.catch_up.swap(false, Ordering::Relaxed) {
                    // No write can come between this checkpoint and the next
                    // transaction, so that one finds the WAL fully copied back
                    // and starts it over from its beginning.
                    if let Err(e) = writer.connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                        eprintln!("[host] key-value checkpoint failed: {e}");
                    }
                }
            }
            Err(e) => {
                let _ = writer.connection.execute_batch("ROLLBACK");
                self.end(writer, epoch, Err(e.into()));
            }
        }
    }

    /// Closes transaction `epoch` as committed or failed, and answers the
    /// callers who waited for it.
    fn end(&self, writer: &mut Writer, epoch: u64, outcome: KvResult<()>) {
        {
            let mut epochs = lock(&self.epochs);
            if outcome.is_err() {
                epochs.failed.push(epoch);
            }
            *epochs = Epochs { newest: epochs.newest, failed: std::mem::take(&mut epochs.failed), ..Epochs::default() };
        }
        self.open.store(false, Ordering::Release);
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.decided.send_replace(epoch);
        for (answer, out) in writer.held.drain(..) {
            answer(match &outcome {
                Ok(()) => out,
                Err(e) => out.and(Err(e.clone())),
            });
        }
    }

    /// Makes sure transaction `epoch` commits within `after`, even if the
    /// requests that used it never wait for it (a stream that read and then
    /// sleeps).
    fn commit_after(&self, after: Duration, epoch: u64) {
        let me = self.me.clone();
        let due = move || {
            if let Some(kv) = me.upgrade() {
                let mut epochs = lock(&kv.epochs);
                if epochs.open == Some(epoch) {
                    epochs.due = true;
                    drop(epochs);
                    kv.pump();
                }
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn(async move {
                tokio::time::sleep(after).await;
                due();
            })),
            // Only sessions set timers, and they come from requests on the
            // runtime; a thread keeps any other caller safe.
            Err(_) => drop(std::thread::spawn(move || {
                std::thread::sleep(after);
                due();
            })),
        }
    }

    fn submit_job(&self, store: &str, op: KvOp, session: Option<Arc<Session>>) -> Pending {
        if let Some(readers) = self.reader_for(&op) {
            // A read on its own connection costs less than queuing for the writer.
            return Pending::ready(readers.read(store, op));
        }
        let op = match &session {
            Some(session) => match self.run_at_once(store, op, session) {
                Ok(out) => return Pending::ready(out),
                Err(op) => op,
            },
            None => op,
        };
        let (answer, answered) = tokio::sync::oneshot::channel();
        let answer: Answer = Box::new(move |out| {
            let _ = answer.send(out);
        });
        self.enqueue(store, op, answer, session);
        Pending::Later(Box::pin(async move { answered.await.unwrap_or_else(|_| Err(stopped())) }))
    }

    /// A request's operation while nothing is queued and the writer is free:
    /// run on the caller's thread at once, without a queue entry, a boxed
    /// answer or a channel (most operations, most of the time). The
    /// operation back when the writer is busy: then it queues.
    fn run_at_once(&self, store: &str, op: KvOp, session: &Arc<Session>) -> Result<KvResult<KvOut>, KvOp> {
        if self.queued.load(Ordering::Acquire) != 0 {
            return Err(op);
        }
        let Some(mut writer) = self.try_writer() else { return Err(op) };
        if op.writes() {
            self.last_write_ms.store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
        }
        let out = match self.run_op(&mut writer, store, op, Some(session)) {
            Ran::Now(out) | Ran::AfterCommit(out) => out,
        };
        if self.commit_wanted() {
            self.commit(&mut writer);
        }
        drop(writer);
        // Whoever holds the writer runs what queued meanwhile (see `pump`).
        if !lock(&self.queue).is_empty() || self.commit_wanted() {
            self.pump();
        }
        Ok(out)
    }

    /// Runs `op` and waits on this thread for its answer, which comes once it is committed.
    fn call(&self, store: &str, op: KvOp) -> KvResult<KvOut> {
        if let Some(readers) = self.reader_for(&op) {
            return readers.read(store, op);
        }
        let (answer, answered) = mpsc::sync_channel(1);
        let answer: Answer = Box::new(move |out| {
            let _ = answer.send(out);
        });
        self.enqueue(store, op, answer, None);
        answered.recv().unwrap_or_else(|_| Err(stopped()))
    }
}

impl Transactions for Inner {
    fn release(&self, epoch: u64) {
        {
            let mut epochs = lock(&self.epochs);
            if epochs.open != Some(epoch) {
                return;
            }
            epochs.running = epochs.running.saturating_sub(1);
            if epochs.running < self.sharing.min_running {
                epochs.due = true;
            }
        }
        if self.commit_wanted() {
            self.pump();
        }
    }

    fn decided(&self, epoch: u64) -> bool {
        *self.decided.borrow() >= epoch
    }

    fn wait(&self, epoch: u64) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let mut decided = self.decided.subscribe();
        Box::pin(async move {
            // An error means the store is gone, and its last transaction
            // ended when it was dropped.
            let _ = decided.wait_for(|&d| d >= epoch).await;
        })
    }

    fn failed_between(&self, first: u64, last: u64) -> bool {
        lock(&self.epochs).failed.iter().any(|f| (first..=last).contains(f))
    }
}

/// Idle read connections to a file, reused.
struct Readers {
    path: std::path::PathBuf,
    idle: Mutex<Vec<Connection>>,
}

/// Read connections kept open for reuse.
const IDLE_READERS: usize = 8;

/// How long after the last write reads go back to running on the caller's
/// thread (see [`Inner::reader_for`]).
const QUIET_MS: u64 = 20;

impl Readers {
    /// Runs a read on its own connection: a snapshot of what is committed.
    fn read(&self, store: &str, op: KvOp) -> KvResult<KvOut> {
        let pooled = lock(&self.idle).pop();
        let connection = match pooled {
            Some(c) => c,
            None => {
                let c = Connection::open(&self.path)?;
                c.busy_timeout(Duration::from_secs(5))?;
                c
            }
        };
        // Several statements (a batch read) see one snapshot.
        let snapshot = matches!(op, KvOp::GetMany(_) | KvOp::Keys);
        if snapshot {
            connection.prepare_cached("BEGIN")?.execute([])?;
        }
        let out = run(&connection, store, op);
        if snapshot {
            connection.prepare_cached("COMMIT")?.execute([])?;
        }
        let mut idle = lock(&self.idle);
        if idle.len() < IDLE_READERS {
            idle.push(connection);
        }
        out
    }
}

fn stopped() -> KvError {
    KvError::Other("the key-value store has stopped".into())
}

/// A panic while holding a lock cannot leave SQLite half-written
/// (transactions roll back), so a poisoned lock is still usable.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

fn prepare(connection: &Connection) -> Result<()> {
    connection.busy_timeout(Duration::from_secs(5))?;
    // Before WAL mode and the first table: only an empty file takes it.
    connection.pragma_update(None, "page_size", PAGE_SIZE)?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    connection.execute(
        "CREATE TABLE IF NOT EXISTS spin_key_value (
            store TEXT NOT NULL,
            key   TEXT NOT NULL,
            value BLOB NOT NULL,
            PRIMARY KEY (store, key)
        )",
        [],
    )?;
    Ok(())
}

const UPSERT: &str = "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
                      ON CONFLICT(store, key) DO UPDATE SET value = excluded.value";
const SELECT: &str = "SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2";
const DELETE: &str = "DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2";

/// One operation, inside the batch's transaction.
fn run(c: &Connection, store: &str, op: KvOp) -> KvResult<KvOut> {
    let get = |key: &str| -> KvResult<Option<Vec<u8>>> {
        Ok(c.prepare_cached(SELECT)?.query_row(params![store, key], |r| r.get(0)).optional()?)
    };
    Ok(match op {
        KvOp::Get(key) => KvOut::Value(get(&key)?),
        KvOp::Set(key, value) => {
            c.prepare_cached(UPSERT)?.execute(params![store, key, value])?;
            KvOut::Done
        }
        KvOp::Delete(key) => {
            c.prepare_cached(DELETE)?.execute(params![store, key])?;
            KvOut::Done
        }
        KvOp::Exists(key) => KvOut::Exists(
            c.prepare_cached("SELECT 1 FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                .exists(params![store, key])?,
        ),
        KvOp::Keys => {
            let mut statement = c.prepare_cached("SELECT key FROM spin_key_value WHERE store = ?1 ORDER BY key")?;
            let keys = statement.query_map(params![store], |r| r.get(0))?.collect::<Result<_, _>>()?;
            KvOut::Keys(keys)
        }
        KvOp::GetMany(keys) => {
            let mut values = Vec::with_capacity(keys.len());
            for key in keys {
                let value = get(&key)?;
                values.push((key, value));
            }
            KvOut::Values(values)
        }
        KvOp::SetMany(entries) => all_or_nothing(c, |c| {
            let mut statement = c.prepare_cached(UPSERT)?;
            for (key, value) in &entries {
                statement.execute(params![store, key, value])?;
            }
            Ok(KvOut::Done)
        })?,
        KvOp::DeleteMany(keys) => all_or_nothing(c, |c| {
            let mut statement = c.prepare_cached(DELETE)?;
            for key in &keys {
                statement.execute(params![store, key])?;
            }
            Ok(KvOut::Done)
        })?,
        KvOp::Increment(key, delta) => {
            let current = match get(&key)? {
                None => 0,
                Some(bytes) => {
                    i64::from_le_bytes(bytes.as_slice().try_into().map_err(|_| KvError::NotACounter(key.clone()))?)
                }
            };
            if delta == 0 {
                // Reading a counter (event streams poll one several times a second): nothing written.
                return Ok(KvOut::Counter(current));
            }
            let next =
                current.checked_add(delta).ok_or_else(|| KvError::Other(format!("counter `{key}` overflows")))?;
            c.prepare_cached(UPSERT)?.execute(params![store, key, next.to_le_bytes().as_slice()])?;
            KvOut::Counter(next)
        }
        KvOp::Swap { key, expected, new } => {
            let changed = match expected {
                Some(old) => c
                    .prepare_cached("UPDATE spin_key_value SET value = ?4 WHERE store = ?1 AND key = ?2 AND value = ?3")?
                    .execute(params![store, key, old, new])?,
                // Exclusive create: unlike Spin's own SQLite store, a racer that
                // also saw "absent" fails here instead of overwriting.
                None => c
                    .prepare_cached(
                        "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3) ON CONFLICT(store, key) DO NOTHING",
                    )?
                    .execute(params![store, key, new])?,
            };
            match changed {
                1 => KvOut::Swapped,
                // Read in the same transaction: the value that won, for the retry.
                _ => KvOut::NotSwapped(get(&key)?),
            }
        }
    })
}

/// Runs a multi-statement operation under a savepoint, so that if it fails
/// halfway it leaves nothing behind (and the batch's other operations stand).
fn all_or_nothing(c: &Connection, op: impl FnOnce(&Connection) -> KvResult<KvOut>) -> KvResult<KvOut> {
    c.execute_batch("SAVEPOINT kv_many")?;
    let out = op(c);
    if out.is_err() {
        c.execute_batch("ROLLBACK TO kv_many")?;
    }
    c.execute_batch("RELEASE kv_many")?;
    out
}

impl KvBackend for SqliteKv {
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
        self.submit_job(store, op, None)
    }
    fn submit_in(&self, store: &str, op: KvOp, session: &Arc<Session>) -> Pending {
        self.submit_job(store, op, Some(session.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn block_on<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(future)
    }

    #[test]
    fn values_are_scoped_by_store_label() {
        let kv = SqliteKv::in_memory().unwrap();
        kv.set("default", "k", b"a").unwrap();
        kv.set("other", "k", b"b").unwrap();
        assert_eq!(kv.get("default", "k").unwrap().unwrap(), b"a");
        assert_eq!(kv.keys("other").unwrap(), ["k"]);
        kv.delete("default", "k").unwrap();
        assert!(!kv.exists("default", "k").unwrap());
        assert!(kv.exists("other", "k").unwrap());
    }

    #[test]
    fn counters_are_eight_little_endian_bytes_and_other_values_are_refused() {
        let kv = SqliteKv::in_memory().unwrap();
        assert_eq!(kv.increment("s", "n", 2).unwrap(), 2);
        assert_eq!(kv.get("s", "n").unwrap().unwrap(), 2i64.to_le_bytes());
        kv.set("s", "text", b"hello").unwrap();
        assert_eq!(kv.increment("s", "text", 1), Err(KvError::NotACounter("text".into())));
        assert_eq!(kv.increment("s", "text", 0), Err(KvError::NotACounter("text".into())));
        assert_eq!(kv.increment("s", "absent", 0).unwrap(), 0, "reading an absent counter writes nothing");
        assert!(!kv.exists("s", "absent").unwrap());
    }

    #[test]
    fn compare_and_swap_is_exclusive_for_absent_keys_and_exact_for_present_ones() {
        let kv = SqliteKv::in_memory().unwrap();
        assert!(kv.compare_and_swap("s", "k", None, b"first").unwrap());
        assert!(!kv.compare_and_swap("s", "k", None, b"second").unwrap());
        assert!(!kv.compare_and_swap("s", "k", Some(b"stale"), b"third").unwrap());
        assert!(kv.compare_and_swap("s", "k", Some(b"first"), b"fourth").unwrap());
        assert_eq!(kv.get("s", "k").unwrap().unwrap(), b"fourth");
    }

    #[test]
    fn batches_read_and_write_many_keys() {
        let kv = SqliteKv::in_memory().unwrap();
        kv.set_many("s", &[("a".into(), b"1".to_vec()), ("b".into(), b"2".to_vec())]).unwrap();
        let got = kv.get_many("s", &["a".into(), "x".into()]).unwrap();
        assert_eq!(got, [("a".to_string(), Some(b"1".to_vec())), ("x".to_string(), None)]);
        kv.delete_many("s", &["a".into(), "b".into()]).unwrap();
        assert!(kv.keys("s").unwrap().is_empty());
    }

    #[test]
    fn operations_queued_together_commit_together_and_each_gets_its_own_answer() {
        let kv = SqliteKv::in_memory().unwrap();
        // While someone holds the writer, 200 increments queue up...
        let busy = kv.writer.lock().unwrap();
        let pending: Vec<_> = (0..200).map(|_| kv.submit("s", KvOp::Increment("n".into(), 1))).collect();
        assert_eq!(kv.commits.load(Ordering::Relaxed), 0);
        drop(busy);
        // ...and the next caller runs them all, in one transaction.
        assert_eq!(kv.increment("s", "other", 1).unwrap(), 1);
        assert_eq!(kv.commits.load(Ordering::Relaxed), 1, "201 operations, one commit");
        let mut answers: Vec<i64> = pending.into_iter().map(|p| block_on(p).unwrap().counter().unwrap()).collect();
        answers.sort();
        assert_eq!(answers, (1..=200).collect::<Vec<_>>(), "every increment answered with its own new value");
    }

    #[test]
    fn a_failing_operation_leaves_the_rest_of_its_transaction_standing() {
        let kv = SqliteKv::in_memory().unwrap();
        let busy = kv.writer.lock().unwrap();
        let pending: Vec<_> = [
            KvOp::Set("text".into(), b"hello".to_vec()),
            KvOp::Increment("text".into(), 1),
            KvOp::SetMany(vec![("a".into(), b"1".to_vec()), ("b".into(), b"2".to_vec())]),
            KvOp::Swap { key: "a".into(), expected: Some(b"stale".to_vec()), new: b"3".to_vec() },
            KvOp::GetMany(vec!["a".into(), "text".into()]),
        ]
        .into_iter()
        .map(|op| kv.submit("s", op))
        .collect();
        drop(busy);
        assert_eq!(kv.keys("s").unwrap(), ["a", "b", "text"], "committed: text, a, b");
        let answers: Vec<_> = pending.into_iter().map(block_on).collect();
        assert_eq!(answers[0], Ok(KvOut::Done));
        assert_eq!(answers[1], Err(KvError::NotACounter("text".into())));
        assert_eq!(answers[2], Ok(KvOut::Done));
        assert_eq!(answers[3], Ok(KvOut::NotSwapped(Some(b"1".to_vec()))), "a failed swap answers the winner");
        let seen = vec![("a".to_string(), Some(b"1".to_vec())), ("text".to_string(), Some(b"hello".to_vec()))];
        assert_eq!(answers[4], Ok(KvOut::Values(seen)), "later reads see the transaction's earlier writes");
        assert_eq!(kv.commits.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn racing_swaps_on_one_key_never_lose_an_update() {
        let dir = std::env::temp_dir().join(format!("spinpresso-kv-swaps-{}", std::process::id()));
        let kv = Arc::new(SqliteKv::open(&dir.join("kv.db")).unwrap());
        kv.set("s", "n", b"0").unwrap();
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let kv = kv.clone();
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let mut seen = kv.get("s", "n").unwrap();
                        loop {
                            let n: u32 = std::str::from_utf8(seen.as_deref().unwrap()).unwrap().parse().unwrap();
                            let op = KvOp::Swap { key: "n".into(), expected: seen, new: (n + 1).to_string().into() };
                            match kv.call("s", op).unwrap() {
                                KvOut::Swapped => break,
                                KvOut::NotSwapped(winner) => seen = winner,
                                other => panic!("{other:?}"),
                            }
                        }
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(kv.get("s", "n").unwrap().unwrap(), b"400");
        drop(kv);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn reads_on_the_quiet_path_see_every_committed_write() {
        let dir = std::env::temp_dir().join(format!("spinpresso-kv-quiet-{}", std::process::id()));
        let kv = SqliteKv::open(&dir.join("kv.db")).unwrap();
        for i in 0..5u8 {
            kv.set("s", "k", &[i]).unwrap();
            assert!(kv.reader_for(&KvOp::Get("k".into())).is_none(), "right after a write, reads queue");
            assert_eq!(kv.get("s", "k").unwrap().unwrap(), [i]);
            std::thread::sleep(std::time::Duration::from_millis(QUIET_MS + 5));
            assert!(kv.reader_for(&KvOp::Get("k".into())).is_some(), "once quiet, reads run at once");
            assert_eq!(kv.get("s", "k").unwrap().unwrap(), [i]);
            assert_eq!(kv.get_many("s", &["k".into()]).unwrap(), [("k".to_string(), Some(vec![i]))]);
        }
        drop(kv);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn two_connections_to_one_file_never_lose_an_increment() {
        let dir = std::env::temp_dir().join(format!("spinpresso-kv-{}", std::process::id()));
        let path = dir.join("kv.db");
        let stores = [Arc::new(SqliteKv::open(&path).unwrap()), Arc::new(SqliteKv::open(&path).unwrap())];
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let kv = stores[i % 2].clone();
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        kv.increment("s", "n", 1).unwrap();
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(stores[0].increment("s", "n", 0).unwrap(), 200);
        drop(stores);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_wal_starts_over_under_writes_that_never_pause() {
        let dir = std::env::temp_dir().join(format!("spinpresso-kv-wal-{}", std::process::id()));
        let path = dir.join("kv.db");
        let kv = Arc::new(SqliteKv::open_with(&path, 256 << 10, Sharing::default()).unwrap());
        // Commits from four threads, each appending at least one page to
        // the WAL: a WAL that never started over would hold them all.
        let started = std::time::Instant::now();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let kv = kv.clone();
                std::thread::spawn(move || {
                    let mut commits = 0u64;
                    while commits < 5_000 || started.elapsed() < std::time::Duration::from_millis(1500) {
                        kv.set("s", &format!("k{t}-{}", commits % 2000), &[7u8; 600]).unwrap();
                        commits += 1;
                    }
                    commits
                })
            })
            .collect();
        let commits: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        let wal = std::fs::metadata(dir.join("kv.db-wal")).unwrap().len();
        assert!(wal < commits * PAGE_SIZE as u64 / 2, "WAL of {wal} bytes after {commits} commits");
        drop(kv);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_writer_is_asked_to_catch_up_once_background_checkpoints_leave_little_behind() {
        let limit = 64 << 20;
        assert_eq!(after_checkpoint(limit, limit, 1, None), Then::Wait);
        assert_eq!(after_checkpoint(limit + 1, limit, 1, None), Then::Again);
        assert_eq!(after_checkpoint(limit + 1, limit, 2, Some(CATCH_UP_FRAMES + 1)), Then::Again);
        assert_eq!(after_checkpoint(limit + 1, limit, 2, Some(CATCH_UP_FRAMES)), Then::CatchUp);
        assert_eq!(after_checkpoint(limit + 1, limit, CATCH_UP_ROUNDS, Some(10 * CATCH_UP_FRAMES)), Then::CatchUp);
        assert_eq!(after_checkpoint(limit, limit, 3, Some(0)), Then::Wait);
    }

    #[test]
    fn sync_database_goes_through_sqlites_own_file_object_on_disk_and_in_memory() {
        let dir = std::env::temp_dir().join(format!("spinpresso-kv-sync-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let connection = Connection::open(dir.join("kv.db")).unwrap();
        connection.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t (x); INSERT INTO t VALUES (1);").unwrap();
        sync_database(&connection).unwrap();
        sync_database(&Connection::open_in_memory().unwrap()).unwrap();
        drop(connection);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_new_file_gets_4_kib_pages_and_an_existing_file_keeps_its_own() {
        let dir = std::env::temp_dir().join(format!("spinpresso-kv-pages-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let page_size = |path: &Path| -> i64 {
            Connection::open(path).unwrap().query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap()
        };
        let fresh = dir.join("fresh.db");
        SqliteKv::open(&fresh).unwrap().set("s", "k", b"v").unwrap();
        assert_eq!(page_size(&fresh), PAGE_SIZE);

        // A store made by an earlier build, which gave new files 1 KiB pages.
        let existing = dir.join("existing.db");
        let earlier = Connection::open(&existing).unwrap();
        earlier.execute_batch(
            "PRAGMA page_size = 1024;
             CREATE TABLE spin_key_value (store TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, PRIMARY KEY (store, key));
             INSERT INTO spin_key_value VALUES ('s', 'k', x'01');",
        )
        .unwrap();
        drop(earlier);
        let kv = SqliteKv::open(&existing).unwrap();
        assert_eq!(kv.get("s", "k").unwrap().unwrap(), [1]);
        kv.set("s", "k2", b"v").unwrap();
        drop(kv);
        assert_eq!(page_size(&existing), 1024);
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// A file store whose transactions stay open until every session that
    /// used them waits (or 10 minutes pass), and its directory.
    fn held_store(name: &str) -> (SqliteKv, std::path::PathBuf) {
        held_store_with(name, 1)
    }

    /// A file store whose transactions commit once fewer than `min_running` of their sessions run.
    fn held_store_with(name: &str, min_running: usize) -> (SqliteKv, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("spinpresso-kv-{name}-{}", std::process::id()));
        let sharing = Sharing { max_open: Duration::from_secs(600), min_running };
        let kv = SqliteKv::open_with(&dir.join("kv.db"), RESTART_WAL_BYTES, sharing).unwrap();
        (kv, dir)
    }

    /// What another connection to the file sees.
    fn committed(dir: &Path, key: &str) -> Option<Vec<u8>> {
        let connection = Connection::open(dir.join("kv.db")).unwrap();
        connection.query_row(SELECT, params!["s", key], |r| r.get(0)).optional().unwrap()
    }

    fn set(key: &str, value: &[u8]) -> KvOp {
        KvOp::Set(key.into(), value.to_vec())
    }

    #[test]
    fn a_requests_operation_runs_at_once_while_the_writer_is_free_and_queues_while_it_is_busy() {
        let (kv, dir) = held_store("at-once");
        let session = Arc::new(Session::default());
        let pending = kv.submit_in("s", set("k", b"1"), &session);
        assert!(matches!(pending, Pending::Ready(Some(Ok(KvOut::Done)))), "answered on the caller's thread");
        let writer = kv.writer.lock().unwrap();
        let queued = kv.submit_in("s", set("k", b"2"), &session);
        assert!(matches!(queued, Pending::Later(_)), "the writer is busy: it waits in the queue");
        assert_eq!(kv.queued.load(Ordering::Acquire), 1);
        drop(writer);
        kv.pump();
        assert_eq!(block_on(queued), Ok(KvOut::Done));
        block_on(session.settle()).unwrap();
        assert_eq!(committed(&dir, "k"), Some(b"2".to_vec()));
        drop(kv);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn requests_running_together_share_a_transaction_that_commits_once_all_of_them_wait() {
        let (kv, dir) = held_store("shared");
        let (a, b) = (Arc::new(Session::default()), Arc::new(Session::default()));
        block_on(async {
            assert_eq!(kv.submit_in("s", set("k", b"1"), &a).await, Ok(KvOut::Done), "answered at once");
            let seen = kv.submit_in("s", KvOp::Get("k".into()), &b).await;
            assert_eq!(seen, Ok(KvOut::Value(Some(b"1".to_vec()))), "b sees a's write");
            assert_eq!(committed(&dir, "k"), None, "not committed while both run");
            assert!(!a.is_settled() && !b.is_settled());

            let a_settled = a.settle();
            assert_eq!(committed(&dir, "k"), None, "b may still add to the transaction");
            assert_eq!(kv.commits.load(Ordering::Relaxed), 0);
            b.settle().await.unwrap();
            a_settled.await.unwrap();
            assert_eq!(committed(&dir, "k"), Some(b"1".to_vec()), "committed once both wait");
            assert_eq!(kv.commits.load(Ordering::Relaxed), 1, "one transaction for both requests");
            assert!(a.is_settled() && b.is_settled());
        });
        drop(kv);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_shared_transaction_commits_once_too_few_of_its_requests_still_run() {
        let (kv, dir) = held_store_with("few-running", 2);
        let [a, b, c] = [(); 3].map(|_| Arc::new(Session::default()));
        block_on(async {
            for (session, key) in [(&a, "a"), (&b, "b"), (&c, "c")] {
                kv.submit_in("s", set(key, b"1"), session).await.unwrap();
            }
            let a_settled = a.settle();
            assert_eq!(committed(&dir, "a"), None, "two still run: the transaction stays open");
            let b_settled = b.settle();
            // One left running, fewer than two: the waiting ones go ahead.
            assert_eq!(committed(&dir, "a"), Some(b"1".to_vec()));
            assert_eq!(committed(&dir, "c"), Some(b"1".to_vec()), "c's operation so far is in it");
            a_settled.await.unwrap();
            b_settled.await.unwrap();
            assert_eq!(kv.commits.load(Ordering::Relaxed), 1);
            // c goes on in a new transaction, which it alone holds open.
            kv.submit_in("s", set("c2", b"2"), &c).await.unwrap();
            assert!(!c.is_settled());
            c.settle().await.unwrap();
            assert_eq!(committed(&dir, "c2"), Some(b"2".to_vec()));
            assert_eq!(kv.commits.load(Ordering::Relaxed), 2);
        });
        drop(kv);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_failed_transaction_fails_every_request_that_saw_it_and_refuses_their_next_operations() {
        let (kv, dir) = held_store("failed");
        let (a, b, c) = (Arc::new(Session::default()), Arc::new(Session::default()), Arc::new(Session::default()));
        block_on(async {
            kv.submit_in("s", set("k", b"1"), &a).await.unwrap();
            kv.submit_in("s", KvOp::Increment("n".into(), 1), &b).await.unwrap();
            kv.fail_next_commit.store(true, Ordering::Relaxed);
            let a_settled = a.settle();
            assert_eq!(b.settle().await, Err(kv_session::lost()));
            assert_eq!(a_settled.await, Err(kv_session::lost()));
            let next = kv.submit_in("s", set("after", b"x"), &a).await;
            assert_eq!(next, Err(kv_session::lost()), "a's next write could build on what was lost");

            assert_eq!(kv.submit_in("s", KvOp::Get("k".into()), &c).await, Ok(KvOut::Value(None)), "rolled back");
            assert_eq!(kv.submit_in("s", KvOp::Increment("n".into(), 1), &c).await, Ok(KvOut::Counter(1)));
            c.settle().await.unwrap();
        });
        assert_eq!(committed(&dir, "after"), None);
        assert_eq!(committed(&dir, "n"), Some(1i64.to_le_bytes().to_vec()));
        drop(kv);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_open_transaction_commits_in_time_even_if_no_one_waits_for_it() {
        let dir = std::env::temp_dir().join(format!("spinpresso-kv-timer-{}", std::process::id()));
        let sharing = Sharing { max_open: Duration::from_millis(20), min_running: 1 };
        let kv = SqliteKv::open_with(&dir.join("kv.db"), RESTART_WAL_BYTES, sharing).unwrap();
        let streaming = Arc::new(Session::default());
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        runtime.block_on(async {
            kv.submit_in("s", set("k", b"1"), &streaming).await.unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            while committed(&dir, "k").is_none() {
                assert!(Instant::now() < deadline, "still not committed");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            assert!(streaming.is_settled());
        });
        drop(kv);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn reads_never_run_beside_an_open_transaction() {
        let (kv, dir) = held_store("beside");
        let a = Arc::new(Session::default());
        let get = KvOp::Get("k".into());
        block_on(async {
            kv.submit_in("s", set("k", b"1"), &a).await.unwrap();
            std::thread::sleep(Duration::from_millis(QUIET_MS + 5));
            assert!(kv.reader_for(&get).is_none(), "a reader would miss the open transaction's write");
            assert_eq!(kv.submit_in("s", get.clone(), &a).await, Ok(KvOut::Value(Some(b"1".to_vec()))));
            a.settle().await.unwrap();
            std::thread::sleep(Duration::from_millis(QUIET_MS + 5));
            assert!(kv.reader_for(&get).is_some(), "committed and quiet: reads run at once");
        });
        drop(kv);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn racing_requests_that_swap_in_shared_transactions_never_lose_an_update() {
        let dir = std::env::temp_dir().join(format!("spinpresso-kv-racing-{}", std::process::id()));
        let kv = Arc::new(SqliteKv::open(&dir.join("kv.db")).unwrap());
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap();
        runtime.block_on(async {
            let tasks: Vec<_> = (0..32)
                .map(|_| {
                    let kv = kv.clone();
                    tokio::spawn(async move {
                        for _ in 0..25 {
                            // One request: read, swap until it wins, wait for the commit.
                            let session = Arc::new(Session::default());
                            let mut seen =
                                kv.submit_in("s", KvOp::Get("n".into()), &session).await.unwrap().value().unwrap();
                            loop {
                                let n: u32 =
                                    seen.as_deref().map_or(0, |v| std::str::from_utf8(v).unwrap().parse().unwrap());
                                let op =
                                    KvOp::Swap { key: "n".into(), expected: seen, new: (n + 1).to_string().into() };
                                match kv.submit_in("s", op, &session).await.unwrap() {
                                    KvOut::Swapped => break,
                                    KvOut::NotSwapped(winner) => seen = winner,
                                    other => panic!("{other:?}"),
                                }
                                tokio::task::yield_now().await;
                            }
                            session.settle().await.unwrap();
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
        });
        assert_eq!(kv.get("s", "n").unwrap().unwrap(), b"800");
        assert!(kv.commits.load(Ordering::Relaxed) < 800, "requests shared transactions");
        drop(kv);
        assert_eq!(committed(&dir, "n"), Some(b"800".to_vec()));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
