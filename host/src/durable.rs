//! Responses that leave only once what they tell is committed: the head
//! waits for every transaction the request's answers came from, and each
//! body chunk for those of the answers before it (a stream keeps reading).

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use hyper::{Response, StatusCode};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::kv::{KvResult, Session};

/// `response` once the store has committed what its request did and saw;
/// a 503 instead if that was lost.
pub async fn settled(response: Response<HyperOutgoingBody>, session: Arc<Session>) -> Response<HyperOutgoingBody> {
    match session.settle().await {
        Ok(()) => response.map(|body| Durable { body, session, waiting: None }.boxed_unsync()),
        Err(e) => {
            eprintln!("[host] answering 503 instead of {}: {e}", response.status().as_u16());
            lost()
        }
    }
}

fn lost() -> Response<HyperOutgoingBody> {
    let body =
        r#"{"error":{"code":"store_failed","message":"The server could not save this request's changes; try again."}}"#;
    let body =
        http_body_util::Full::new(Bytes::from_static(body.as_bytes())).map_err(|never| match never {}).boxed_unsync();
    Response::builder()
        .status(StatusCode::SERVICE_UNAVAILABLE)
        .header("content-type", "application/json")
        .body(body)
        .expect("a static response is always valid")
}

type Settling = Pin<Box<dyn Future<Output = KvResult<()>> + Send>>;

/// A body whose frames each wait until the session is settled.
struct Durable {
    body: HyperOutgoingBody,
    session: Arc<Session>,
    waiting: Option<(Settling, Frame<Bytes>)>,
}

impl Body for Durable {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        loop {
            if let Some((settling, _)) = &mut this.waiting {
                let settled = ready!(settling.as_mut().poll(cx));
                let (_, frame) = this.waiting.take().expect("a frame was waiting");
                return Poll::Ready(Some(match settled {
                    Ok(()) => Ok(frame),
                    // Cuts the response off: the client must not take it as complete.
                    Err(e) => Err(wasmtime_wasi_http::Error::InternalError(Some(e.to_string()))),
                }));
            }
            match ready!(Pin::new(&mut this.body).poll_frame(cx)) {
                Some(Ok(frame)) if !this.session.is_settled() => {
                    this.waiting = Some((Box::pin(this.session.settle()), frame));
                }
                other => return Poll::Ready(other),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.waiting.is_none() && self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::{KvBackend, KvOp, SqliteKv};
    use crate::kv_sqlite::Sharing;
    use http_body_util::Full;
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    fn answer(text: &'static str) -> Response<HyperOutgoingBody> {
        Response::new(Full::new(Bytes::from_static(text.as_bytes())).map_err(|never| match never {}).boxed_unsync())
    }

    fn poll_frame(body: &mut HyperOutgoingBody) -> Poll<Option<Result<Frame<Bytes>, wasmtime_wasi_http::Error>>> {
        Pin::new(body).poll_frame(&mut Context::from_waker(std::task::Waker::noop()))
    }

    /// A store whose transactions stay open while a session that used them runs.
    fn held_store() -> SqliteKv {
        SqliteKv::in_memory_with(Sharing { max_open: Duration::from_secs(600), min_running: 1 }).unwrap()
    }

    #[tokio::test]
    async fn a_body_chunk_leaves_only_once_what_came_before_it_is_committed() {
        let kv = held_store();
        let (streaming, other) = (Arc::new(Session::default()), Arc::new(Session::default()));
        // Nothing read yet: the head goes out at once.
        let mut body = settled(answer("event"), streaming.clone()).await.into_body();
        // Then the stream reads what another running request wrote.
        kv.submit_in("s", KvOp::Set("k".into(), b"1".to_vec()), &other).await.unwrap();
        kv.submit_in("s", KvOp::Get("k".into()), &streaming).await.unwrap();
        assert!(poll_frame(&mut body).is_pending(), "held while that write is uncommitted");
        other.settle().await.unwrap();
        match poll_frame(&mut body) {
            Poll::Ready(Some(Ok(frame))) => assert_eq!(frame.into_data().unwrap(), "event"),
            other => panic!("expected the chunk, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_response_whose_writes_were_lost_becomes_a_503() {
        let kv = held_store();
        let session = Arc::new(Session::default());
        kv.submit_in("s", KvOp::Set("k".into(), b"1".to_vec()), &session).await.unwrap();
        kv.fail_next_commit.store(true, Ordering::Relaxed);
        let response = settled(answer("saved"), session).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert!(String::from_utf8_lossy(&body).contains("store_failed"), "{body:?}");
    }
}
