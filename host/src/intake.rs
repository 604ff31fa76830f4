//! What a request from the network goes through around [`App::handle`]:
//! its client's turn ([`Admission`]), a body read in full by the host within
//! its size and time limits, if the component answers with an event stream,
//! a stream slot instead of the turn, and a deadline for the whole response.
//! An event stream also ends as soon as the host starts stopping: its client
//! resumes elsewhere (or after the restart) from its last event id and loses
//! nothing, and the host does not wait out the stream to stop.
//! Every refusal is the API's JSON error with its status; the host's own
//! requests (the sweeper) skip this.

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::{Request, Response, StatusCode};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::admission::{Admission, Refusal};
use crate::server::{json_error, App, GuestTask};

/// Serves one request from `client`, within the limits of `admission`;
/// `closer` closes the request's connection (see [`watchdog`]); `stopping`
/// turns true when the host starts stopping.
pub async fn serve(
    app: &App,
    admission: &Arc<Admission>,
    req: Request<Incoming>,
    client: SocketAddr,
    closer: &Arc<Notify>,
    stopping: watch::Receiver<bool>,
) -> Response<HyperOutgoingBody> {
    let limits = admission.limits();
    let deadline = limits.response_timeout.map(|timeout| tokio::time::Instant::now() + timeout);
    if declared_length(&req).is_some_and(|length| length > limits.max_body_bytes) {
        notice(Notice::Body, "a request body is larger than --max-body-bytes: answering 413");
        return too_large(limits.max_body_bytes);
    }
    let turn = match admission.request(client.ip()).await {
        Ok(turn) => turn,
        Err(refusal) => return refused(refusal),
    };
    let (parts, body) = req.into_parts();
    let body = match read_body(body, limits.max_body_bytes, limits.body_timeout).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => {
            notice(Notice::Body, "a request body is larger than --max-body-bytes: answering 413");
            return too_large(limits.max_body_bytes);
        }
        Err(BodyError::TimedOut) => {
            notice(Notice::Slow, "a request body did not arrive within --body-timeout: answering 408");
            return json_error(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                "The request body did not arrive in time.",
                None,
            );
        }
        Err(BodyError::Broken) => {
            return json_error(StatusCode::BAD_REQUEST, "bad_request", "The request body could not be read.", None)
        }
    };
    let response = app.handle(Request::from_parts(parts, Full::new(body)), client).await;
    let watchdog = watchdog(&response, deadline, closer);
    if !is_event_stream(&response) {
        return holding(response, (turn, watchdog));
    }
    // A stream holds its instance for as long as it lasts: it takes a stream
    // slot, and gives its client's request turn back.
    match admission.stream(client.ip()) {
        Ok(slot) => {
            drop(turn);
            holding(ending_when_stopping(response, stopping), (slot, watchdog))
        }
        Err(refusal) => {
            if let Some(task) = response.extensions().get::<GuestTask>() {
                task.stop();
            }
            refused(refusal)
        }
    }
}

/// Stops a response's guest and closes its connection at `deadline`, unless
/// the response is sent (or dropped) first: hyper stops polling a body its
/// client does not read, so only a timer of its own can end it.
struct Watchdog(tokio::task::JoinHandle<()>);

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn watchdog(
    response: &Response<HyperOutgoingBody>,
    deadline: Option<tokio::time::Instant>,
    closer: &Arc<Notify>,
) -> Option<Watchdog> {
    let deadline = deadline?;
    let guest = response.extensions().get::<GuestTask>().cloned();
    let closer = closer.clone();
    Some(Watchdog(tokio::spawn(async move {
        tokio::time::sleep_until(deadline).await;
        notice(Notice::Stalled, "a response was not sent within --response-timeout: closing its connection");
        if let Some(guest) = guest {
            guest.stop();
        }
        closer.notify_one();
    })))
}

/// The Content-Length a request declares, if any.
fn declared_length<B>(req: &Request<B>) -> Option<u64> {
    req.headers().get(hyper::header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

fn is_event_stream<B>(response: &Response<B>) -> bool {
    response
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/event-stream"))
}

enum BodyError {
    TooLarge,
    TimedOut,
    /// The client went away or sent a malformed body.
    Broken,
}

/// The whole body, read only up to `cap` bytes and within `timeout`.
async fn read_body(mut body: Incoming, cap: u64, timeout: Option<Duration>) -> Result<Bytes, BodyError> {
    if body.is_end_stream() {
        return Ok(Bytes::new());
    }
    let read = async {
        let mut buffer = BytesMut::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| BodyError::Broken)?;
            if let Ok(data) = frame.into_data() {
                if (buffer.len() + data.len()) as u64 > cap {
                    return Err(BodyError::TooLarge);
                }
                buffer.extend_from_slice(&data);
            }
        }
        Ok(buffer.freeze())
    };
    match timeout {
        Some(timeout) => tokio::time::timeout(timeout, read).await.unwrap_or(Err(BodyError::TimedOut)),
        None => read.await,
    }
}

fn too_large(cap: u64) -> Response<HyperOutgoingBody> {
    let message = format!("The request body is larger than this server accepts ({cap} bytes).");
    json_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", &message, None)
}

fn refused(refusal: Refusal) -> Response<HyperOutgoingBody> {
    let (code, message, notice_text) = match refusal {
        Refusal::TooManyRequests => (
            "too_many_requests",
            "This client has too many requests in progress; try again in a second.",
            "a client kept more requests in flight than --max-requests-per-client past --queue-timeout: answering 503",
        ),
        Refusal::TooManyStreams => (
            "too_many_streams",
            "This client has too many event streams open; close one first.",
            "a client opened more event streams than --max-streams-per-client: answering 503",
        ),
        Refusal::StreamsFull => (
            "busy",
            "The server is at its limit of event streams; try again in a few seconds.",
            "every event-stream slot is taken (the rest are kept by --reserved-for-requests): answering 503",
        ),
    };
    notice(Notice::Refused(refusal), notice_text);
    json_error(StatusCode::SERVICE_UNAVAILABLE, code, message, Some(1))
}

/// A response whose body keeps `guard` until it is done or dropped.
fn holding<G: Send + Unpin + 'static>(response: Response<HyperOutgoingBody>, guard: G) -> Response<HyperOutgoingBody> {
    response.map(|body| Holding { body, _guard: guard }.boxed_unsync())
}

struct Holding<G> {
    body: HyperOutgoingBody,
    _guard: G,
}

impl<G: Unpin> Body for Holding<G> {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A response that ends, as a complete response, once `stopping` turns true
/// (or its sender is gone), and then stops its guest.
fn ending_when_stopping(
    response: Response<HyperOutgoingBody>,
    mut stopping: watch::Receiver<bool>,
) -> Response<HyperOutgoingBody> {
    let guest = response.extensions().get::<GuestTask>().cloned();
    let stopped = Box::pin(async move {
        let _ = stopping.wait_for(|stopping| *stopping).await;
    });
    response.map(|body| EndingWhenStopping { body, stopped: Some(stopped), guest }.boxed_unsync())
}

struct EndingWhenStopping {
    body: HyperOutgoingBody,
    /// `None` once the host is stopping: the body has ended.
    stopped: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    guest: Option<GuestTask>,
}

impl Body for EndingWhenStopping {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let Some(stopped) = self.stopped.as_mut() else { return Poll::Ready(None) };
        if stopped.as_mut().poll(cx).is_ready() {
            self.stopped = None;
            if let Some(guest) = self.guest.take() {
                guest.stop();
            }
            return Poll::Ready(None);
        }
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.stopped.is_none() || self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Kinds of refusal, each said on standard error at most once in
/// [`NOTICE_EVERY`], so a flood does not flood the log too.
#[derive(Clone, Copy)]
enum Notice {
    Body,
    Slow,
    Stalled,
    Refused(Refusal),
}

const NOTICE_EVERY: Duration = Duration::from_secs(10);

fn notice(kind: Notice, text: &str) {
    static LAST: [AtomicU64; 6] = [const { AtomicU64::new(0) }; 6];
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let index = match kind {
        Notice::Body => 0,
        Notice::Slow => 1,
        Notice::Refused(Refusal::TooManyRequests) => 2,
        Notice::Refused(Refusal::TooManyStreams) => 3,
        Notice::Refused(Refusal::StreamsFull) => 4,
        Notice::Stalled => 5,
    };
    // Milliseconds since the first notice, plus one (0 = never said).
    let now = START.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1;
    let last = LAST[index].load(Ordering::Relaxed);
    if (last == 0 || now >= last + NOTICE_EVERY.as_millis() as u64)
        && LAST[index].compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    {
        eprintln!("[host] {text} (said at most every {}s)", NOTICE_EVERY.as_secs());
    }
}
