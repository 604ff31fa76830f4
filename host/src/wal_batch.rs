//! A VFS for the writing connection that sends each commit's WAL frames to
//! the file in one `pwrite` instead of two per frame.
//!
//! SQLite writes a frame as its 24-byte header and then its page. A commit
//! of the shared transactions writes dozens of frames, so about 70 system
//! calls, while every other request waits for the store. Here the frames of
//! one append are gathered in memory and written when the commit frame (the
//! one whose header carries the database size) is complete, from that same
//! `xWrite` call: a failed write fails the commit as before, and the frames
//! are in the file before the commit is published in the WAL index (which
//! SQLite updates after its last `xWrite`). What a killed process leaves
//! behind is the same: nothing is held back once a commit returns.
//!
//! Everything else goes straight to SQLite's own `unix` VFS. Any other call
//! on the WAL file first writes what is gathered, so SQLite never reads,
//! syncs, truncates or locks around a write it has not made. Writes that
//! are not appends of ordinary frames (the WAL header, a page rewritten in
//! place, checksums rewritten at commit, a commit frame's header when
//! nothing is gathered) are written at once, as before.

use rusqlite::ffi;
use std::ffi::{c_int, c_void, CStr};
use std::sync::OnceLock;

/// The name to open a connection with.
pub const NAME: &CStr = c"spinpresso-wal-batch";

const FRAME_HEADER: usize = 24;

/// The most one `unix` write takes: it keeps only the low 17 bits of a
/// length (SQLite itself never writes more than a page at once).
const MAX_WRITE: usize = 64 << 10;

/// Gathered bytes past which they are written even before the commit frame
/// (a transaction spilling pages from the cache).
const FLUSH_AT: usize = 4 << 20;

/// Registers the VFS (once); false if SQLite has no `unix` VFS to build on.
pub fn register() -> bool {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    *REGISTERED.get_or_init(|| unsafe {
        let unix = ffi::sqlite3_vfs_find(c"unix".as_ptr());
        if unix.is_null() {
            return false;
        }
        let mut vfs = *unix;
        vfs.szOsFile = (real_offset() + (*unix).szOsFile as usize) as c_int;
        vfs.zName = NAME.as_ptr();
        vfs.pNext = std::ptr::null_mut();
        vfs.xOpen = Some(open);
        UNIX.get_or_init(|| Unix(unix));
        // Lives as long as the process: SQLite keeps a pointer to it.
        let vfs = Box::leak(Box::new(vfs));
        ffi::sqlite3_vfs_register(vfs, 0) == ffi::SQLITE_OK
    })
}

struct Unix(*mut ffi::sqlite3_vfs);
// SAFETY: SQLite's VFS objects are immutable once registered and thread-safe.
unsafe impl Send for Unix {}
unsafe impl Sync for Unix {}
static UNIX: OnceLock<Unix> = OnceLock::new();

fn unix() -> *mut ffi::sqlite3_vfs {
    UNIX.get().expect("registered before use").0
}

/// A WAL file: SQLite's file object, then the `unix` file it wraps (placed
/// right after this struct in the same allocation).
#[repr(C)]
struct WalFile {
    base: ffi::sqlite3_file,
    real: *mut ffi::sqlite3_file,
    gathered: Vec<u8>,
    /// File offset of `gathered[0]`.
    start: i64,
    /// The last gathered write was a commit frame's header: its page ends the commit.
    commit_next: bool,
}

fn real_offset() -> usize {
    std::mem::size_of::<WalFile>().next_multiple_of(16)
}

unsafe extern "C" fn open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let unix = unix();
    let unix_open = (*unix).xOpen.expect("the unix VFS opens files");
    if flags & ffi::SQLITE_OPEN_WAL == 0 {
        // The database and other files are `unix` files, without a wrapper.
        return unix_open(unix, name, file, flags, out_flags);
    }
    let real = (file as *mut u8).add(real_offset()) as *mut ffi::sqlite3_file;
    (*file).pMethods = std::ptr::null();
    let rc = unix_open(unix, name, real, flags, out_flags);
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    std::ptr::write(
        file as *mut WalFile,
        WalFile {
            base: ffi::sqlite3_file { pMethods: &WAL_METHODS },
            real,
            gathered: Vec::new(),
            start: 0,
            commit_next: false,
        },
    );
    ffi::SQLITE_OK
}

unsafe fn wal<'a>(file: *mut ffi::sqlite3_file) -> &'a mut WalFile {
    &mut *(file as *mut WalFile)
}

unsafe fn methods(real: *mut ffi::sqlite3_file) -> &'static ffi::sqlite3_io_methods {
    &*(*real).pMethods
}

impl WalFile {
    /// Writes what is gathered, in one call.
    unsafe fn flush(&mut self) -> c_int {
        self.commit_next = false;
        if self.gathered.is_empty() {
            return ffi::SQLITE_OK;
        }
        let mut rc = ffi::SQLITE_OK;
        let mut offset = self.start;
        for chunk in self.gathered.chunks(MAX_WRITE) {
            rc = unix_write(self.real, chunk.as_ptr().cast(), chunk.len() as c_int, offset);
            if rc != ffi::SQLITE_OK {
                break;
            }
            offset += chunk.len() as i64;
        }
        // Gone either way: after a failure SQLite rolls the transaction back.
        self.gathered.clear();
        rc
    }
}

unsafe extern "C" fn write(file: *mut ffi::sqlite3_file, data: *const c_void, amount: c_int, offset: i64) -> c_int {
    let wal = wal(file);
    let bytes = std::slice::from_raw_parts(data.cast::<u8>(), amount as usize);
    let header = bytes.len() == FRAME_HEADER;
    // Bytes 4..8 of a frame header: the database size after a commit, 0 otherwise.
    let commit_header = header && bytes[4..8] != [0; 4];
    let follows = !wal.gathered.is_empty() && offset == wal.start + wal.gathered.len() as i64;
    if follows || (wal.gathered.is_empty() && header && !commit_header) {
        if wal.gathered.is_empty() {
            wal.start = offset;
        }
        wal.gathered.extend_from_slice(bytes);
        if std::mem::replace(&mut wal.commit_next, commit_header) || wal.gathered.len() >= FLUSH_AT {
            return wal.flush();
        }
        return ffi::SQLITE_OK;
    }
    let rc = wal.flush();
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    unix_write(wal.real, data, amount, offset)
}

unsafe fn unix_write(real: *mut ffi::sqlite3_file, data: *const c_void, amount: c_int, offset: i64) -> c_int {
    #[cfg(test)]
    tests::WRITES.with(|w| w.set(w.get() + 1));
    methods(real).xWrite.expect("a file writes")(real, data, amount, offset)
}

unsafe extern "C" fn close(file: *mut ffi::sqlite3_file) -> c_int {
    let wal = wal(file);
    let flushed = wal.flush();
    let closed = methods(wal.real).xClose.expect("a file closes")(wal.real);
    std::ptr::drop_in_place(file as *mut WalFile);
    if flushed != ffi::SQLITE_OK {
        flushed
    } else {
        closed
    }
}

/// Defines a method that writes what is gathered, then calls `unix`'s.
macro_rules! flush_then {
    ($name:ident, $method:ident ( $($arg:ident : $ty:ty),* )) => {
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file $(, $arg: $ty)*) -> c_int {
            let wal = wal(file);
            let rc = wal.flush();
            if rc != ffi::SQLITE_OK {
                return rc;
            }
            methods(wal.real).$method.expect("the unix VFS has every version-1 method")(wal.real $(, $arg)*)
        }
    };
}

flush_then!(read, xRead(data: *mut c_void, amount: c_int, offset: i64));
flush_then!(truncate, xTruncate(size: i64));
flush_then!(sync, xSync(flags: c_int));
flush_then!(file_size, xFileSize(size: *mut i64));
flush_then!(lock, xLock(level: c_int));
flush_then!(unlock, xUnlock(level: c_int));
flush_then!(check_reserved_lock, xCheckReservedLock(out: *mut c_int));
flush_then!(file_control, xFileControl(op: c_int, arg: *mut c_void));

unsafe extern "C" fn sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    let real = wal(file).real;
    methods(real).xSectorSize.expect("the unix VFS has every version-1 method")(real)
}

unsafe extern "C" fn device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    let real = wal(file).real;
    methods(real).xDeviceCharacteristics.expect("the unix VFS has every version-1 method")(real)
}

/// Version 1: SQLite maps shared memory and pages through the database
/// file, never through the WAL.
static WAL_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 1,
    xClose: Some(close),
    xRead: Some(read),
    xWrite: Some(write),
    xTruncate: Some(truncate),
    xSync: Some(sync),
    xFileSize: Some(file_size),
    xLock: Some(lock),
    xUnlock: Some(unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: None,
    xShmLock: None,
    xShmBarrier: None,
    xShmUnmap: None,
    xFetch: None,
    xUnfetch: None,
};

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::{params, Connection, OpenFlags};
    use std::path::{Path, PathBuf};

    thread_local! {
        /// Writes to WAL files made on this thread (SQLite calls the VFS on its caller's thread).
        pub static WRITES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("spinpresso-wal-batch-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A writer as the store opens it: this VFS, WAL, `synchronous=NORMAL`, no automatic checkpoints.
    fn writer(path: &Path) -> Connection {
        assert!(register());
        let c = Connection::open_with_flags_and_vfs(path, OpenFlags::default(), NAME).unwrap();
        c.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint=0;
             CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB NOT NULL);",
        )
        .unwrap();
        c
    }

    fn value(k: i64, round: i64) -> Vec<u8> {
        (0..1000).map(|i| (k * 31 + i * 7 + round) as u8).collect()
    }

    /// What a process that opens a copy of the files finds, as after the
    /// writer was killed: SQLite rebuilds the WAL index from the frames,
    /// checking their checksums, and stops at the first bad one.
    fn recovered(dir: &Path, copy: &str) -> Connection {
        let to = dir.join(copy);
        std::fs::create_dir_all(&to).unwrap();
        std::fs::copy(dir.join("kv.db"), to.join("kv.db")).unwrap();
        std::fs::copy(dir.join("kv.db-wal"), to.join("kv.db-wal")).unwrap();
        let c = Connection::open(to.join("kv.db")).unwrap();
        let check: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(check, "ok");
        c
    }

    fn rows(c: &Connection, round: i64) -> usize {
        let mut s = c.prepare("SELECT k, v FROM t ORDER BY k").unwrap();
        let all: Vec<(i64, Vec<u8>)> =
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(|r| r.unwrap()).collect();
        for (k, v) in &all {
            assert_eq!(*v, value(*k, round), "row {k}");
        }
        all.len()
    }

    #[test]
    fn a_commit_of_many_frames_goes_out_in_a_few_writes_and_survives_a_killed_writer() {
        let dir = scratch("commit");
        let c = writer(&dir.join("kv.db"));
        let before = WRITES.get();
        let tx = c.unchecked_transaction().unwrap();
        for k in 0..400 {
            tx.execute("INSERT INTO t VALUES (?1, ?2)", params![k, value(k, 0)]).unwrap();
        }
        tx.commit().unwrap();
        let frames = std::fs::metadata(dir.join("kv.db-wal")).unwrap().len() / (4096 + 24);
        assert!(frames > 100, "{frames} frames");
        // Without gathering: two writes per frame. With it: one per 64 KiB
        // (and the WAL's own header, written apart).
        let writes = WRITES.get() - before;
        assert!(writes as u64 <= frames * (4096 + 24) / MAX_WRITE as u64 + 2, "{writes} writes for {frames} frames");
        // Another connection sees it all, and so does a process that finds
        // the files as they are while the writer is still open.
        assert_eq!(rows(&Connection::open(dir.join("kv.db")).unwrap(), 0), 400);
        assert_eq!(rows(&recovered(&dir, "killed"), 0), 400);
        drop(c);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_transaction_that_spills_and_rewrites_its_frames_commits_whole() {
        let dir = scratch("spill");
        let c = writer(&dir.join("kv.db"));
        let tx = c.unchecked_transaction().unwrap();
        for k in 0..400 {
            tx.execute("INSERT INTO t VALUES (?1, ?2)", params![k, value(k, 0)]).unwrap();
        }
        tx.commit().unwrap();
        // A page cache of 10 pages: the transaction spills frames to the WAL
        // before its commit, then changes those pages again, so SQLite
        // rewrites the frames in place and their checksums at the commit.
        c.execute_batch("PRAGMA cache_size=10").unwrap();
        let tx = c.unchecked_transaction().unwrap();
        for pass in 1..=2 {
            for k in 0..400 {
                tx.execute("UPDATE t SET v = ?2 WHERE k = ?1", params![k, value(k, pass)]).unwrap();
            }
        }
        tx.commit().unwrap();
        assert_eq!(rows(&Connection::open(dir.join("kv.db")).unwrap(), 2), 400);
        assert_eq!(rows(&recovered(&dir, "killed"), 2), 400);
        drop(c);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
