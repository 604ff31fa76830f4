//! Guest stdout/stderr, written to the host's own, each line prefixed with
//! the component id so interleaved output of concurrent requests stays readable.

use std::io::Write;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

#[derive(Clone, Copy)]
pub enum Stream {
    Stdout,
    Stderr,
}

#[derive(Clone)]
pub struct GuestOutput {
    component: Arc<str>,
    stream: Stream,
}

impl GuestOutput {
    pub fn new(component: Arc<str>, stream: Stream) -> Self {
        Self { component, stream }
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(LineWriter { output: self.clone(), pending: Vec::new() })
    }
}

/// Buffers a partial line until its newline arrives (or the stream ends).
struct LineWriter {
    output: GuestOutput,
    pending: Vec<u8>,
}

impl LineWriter {
    fn emit(&self, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches('\r');
        let prefix = &self.output.component;
        // Host stdio is line-buffered and shared; a failed write has nowhere to be reported.
        let _ = match self.output.stream {
            Stream::Stdout => writeln!(std::io::stdout().lock(), "[{prefix}] {text}"),
            Stream::Stderr => writeln!(std::io::stderr().lock(), "[{prefix}] {text}"),
        };
    }

    fn flush_lines(&mut self) {
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            self.emit(&line[..line.len() - 1]);
        }
        // A guest printing without newlines must not grow this forever.
        if self.pending.len() > 16 * 1024 {
            let chunk = std::mem::take(&mut self.pending);
            self.emit(&chunk);
        }
    }

    fn flush_rest(&mut self) {
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            self.emit(&rest);
        }
    }
}

impl AsyncWrite for LineWriter {
    fn poll_write(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.pending.extend_from_slice(buf);
        self.flush_lines();
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.flush_rest();
        Poll::Ready(Ok(()))
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        self.flush_rest();
    }
}
