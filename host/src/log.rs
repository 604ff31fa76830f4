//! The host's standard output: its own lines and what guests print there.
//!
//! Every request writes two lines or more (what its guest logs and the
//! access log), and one `write(2)` per line cost about 2 % of the host's CPU
//! under load. Lines are gathered and written together instead, at most
//! [`FLUSH_AFTER`] after the first of them, in the order they came. Standard
//! error is not gathered: warnings and errors show at once.

use std::fmt::Arguments;
use std::io::Write;
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

/// The longest a line waits before it is written.
const FLUSH_AFTER: Duration = Duration::from_millis(10);

/// Past this many bytes waiting, the request adding a line writes them all itself.
const MAX_PENDING: usize = 64 * 1024;

struct Log {
    pending: Mutex<Vec<u8>>,
    /// Signalled when a line arrives while none was waiting.
    arrived: Condvar,
    /// Where lines go (standard output, or a test's buffer).
    sink: fn(&[u8]),
}

impl Log {
    fn new(sink: fn(&[u8])) -> Self {
        Self { pending: Mutex::new(Vec::new()), arrived: Condvar::new(), sink }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<u8>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes what waits. The caller holds the lock, so lines keep their order.
    fn write_out(&self, pending: &mut Vec<u8>) {
        if !pending.is_empty() {
            (self.sink)(pending);
            pending.clear();
        }
    }

    fn line(&self, text: Arguments) {
        let mut pending = self.lock();
        let was_empty = pending.is_empty();
        let _ = pending.write_fmt(text);
        pending.push(b'\n');
        if pending.len() >= MAX_PENDING {
            self.write_out(&mut pending);
        } else if was_empty {
            self.arrived.notify_one();
        }
    }

    fn flush(&self) {
        self.write_out(&mut self.lock());
    }

    /// The writer thread: waits for a line, lets more gather, writes them all.
    fn write_in_batches(&self) {
        loop {
            let mut pending = self.lock();
            while pending.is_empty() {
                pending = self.arrived.wait(pending).unwrap_or_else(|p| p.into_inner());
            }
            drop(pending);
            std::thread::sleep(FLUSH_AFTER);
            self.flush();
        }
    }

    fn start(&'static self) -> &'static Self {
        let spawned = std::thread::Builder::new().name("log-writer".into()).spawn(|| self.write_in_batches());
        if let Err(e) = spawned {
            eprintln!("[host] no log writer thread ({e}): lines wait for the next flush");
        }
        self
    }
}

fn stdout(bytes: &[u8]) {
    // Standard output has nowhere to report its own failure.
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(bytes).and_then(|()| out.flush());
}

static LOG: OnceLock<&'static Log> = OnceLock::new();

fn log() -> &'static Log {
    LOG.get_or_init(|| Box::leak(Box::new(Log::new(stdout))).start())
}

/// Adds one line to standard output (the newline is added here).
pub fn line(text: Arguments) {
    log().line(text);
}

/// Writes every line that waits (before the host exits).
pub fn flush() {
    log().flush();
}

/// `println!` for the host's standard output, through [`line`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::log::line(format_args!($($arg)*))
    };
}
pub(crate) use out;

#[cfg(test)]
mod tests {
    use super::*;

    static WRITTEN: Mutex<Vec<u8>> = Mutex::new(Vec::new());

    fn capture(bytes: &[u8]) {
        WRITTEN.lock().unwrap().extend_from_slice(bytes);
    }

    fn written() -> String {
        String::from_utf8(WRITTEN.lock().unwrap().clone()).unwrap()
    }

    /// One test, as the captured output is shared.
    #[test]
    fn lines_are_written_together_in_order_and_soon() {
        let log = Log::new(capture);
        log.line(format_args!("first {}", 1));
        log.line(format_args!("second"));
        assert_eq!(written(), "", "lines wait for their batch");
        log.flush();
        assert_eq!(written(), "first 1\nsecond\n");

        // A long backlog is written by whoever adds to it.
        log.line(format_args!("{}", "x".repeat(MAX_PENDING)));
        assert_eq!(written().len(), "first 1\nsecond\n".len() + MAX_PENDING + 1);

        // With its writer thread, a line is written within the flush delay.
        let log: &'static Log = Box::leak(Box::new(Log::new(capture))).start();
        log.line(format_args!("third"));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !written().ends_with("third\n") && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(written().ends_with("third\n"), "written by the log writer thread");
    }
}
