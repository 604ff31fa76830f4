//! Serving HTTP: route each request like Spin, pass Spin's `spin-*` headers,
//! run the component in a fresh instance, and answer 500 if it traps.

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Body;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::WasiHttpView;

use crate::admission::{Admission, Limits};
use crate::compile_cache::CompileCache;
use crate::engine::LoadedComponent;
use crate::kv::{KvBackend, KvStats, Session};
use crate::log::out;
use crate::manifest::Manifest;
use crate::routes::{RouteMatch, RoutePattern, Router};
use crate::variables::Variables;

/// How long in-flight requests get to finish after a stop signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

pub struct App {
    components: Vec<LoadedComponent>,
    router: Router<usize>,
    base: String,
    kv: Arc<dyn KvBackend>,
    variables: Arc<Variables>,
    log_requests: bool,
    /// How long a component gets to answer (its response head).
    request_timeout: Option<Duration>,
}

/// The task running a request's guest, on its response: the guest goes on
/// streaming the body after the head, unless the host stops it.
#[derive(Clone)]
pub struct GuestTask(tokio::task::AbortHandle);

impl GuestTask {
    /// Stops the guest at its next yield; its instance slot is freed.
    pub fn stop(&self) {
        self.0.abort();
    }
}

/// Stops a guest whose request is dropped before it answered (the client
/// left, or the request timed out).
struct StopUnlessAnswered(Option<tokio::task::AbortHandle>);

impl Drop for StopUnlessAnswered {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}

/// The component did not answer within the request timeout.
#[derive(Debug)]
struct TimedOut(Duration);

impl std::fmt::Display for TimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no answer within {:?}", self.0)
    }
}

impl std::error::Error for TimedOut {}

/// Marks a request the host makes itself (the sweeper's): never logged, as
/// a line every few seconds would drown the rest.
#[derive(Clone, Copy)]
struct Unlogged;

impl App {
    /// Compiles every component of the manifest (once, here, not per request).
    pub fn load(
        manifest: Manifest,
        engine: &wasmtime::Engine,
        cache: &CompileCache,
        kv: Arc<dyn KvBackend>,
        variables: Variables,
        log_requests: bool,
    ) -> Result<Self> {
        let mut components = Vec::new();
        let mut index = std::collections::HashMap::new();
        for (id, spec) in manifest.components {
            // Only components reachable from a route are served (and compiled).
            if manifest.triggers.iter().any(|t| t.component == id) {
                index.insert(id, components.len());
                let mut component = LoadedComponent::load(engine, spec, cache)?;
                component.log_stdout = log_requests;
                components.push(component);
            }
        }
        let routes = manifest.triggers.into_iter().map(|t| (t.route, index[&t.component])).collect();
        Ok(Self {
            components,
            router: Router::new(routes),
            base: manifest.base,
            kv,
            variables: Arc::new(variables),
            log_requests,
            request_timeout: None,
        })
    }

    /// Answers 504 when a component has not answered within `timeout`.
    pub fn with_request_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.request_timeout = timeout;
        self
    }

    pub fn has_route(&self, path: &str) -> bool {
        self.router.contains_exact(path)
    }

    pub fn variables(&self) -> &Variables {
        &self.variables
    }

    /// Handles one request end to end; never fails (errors become 4xx/5xx answers).
    pub async fn handle<B>(&self, req: Request<B>, client: SocketAddr) -> Response<HyperOutgoingBody>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let started = Instant::now();
        let logged = self.log_requests && req.extensions().get::<Unlogged>().is_none();
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let stats = Arc::new(KvStats::default());
        let session = Arc::new(Session::default());
        let (response, component) = match self.dispatch(req, client, stats.clone(), session.clone()).await {
            Ok((response, component)) => (response, Some(component)),
            Err(response) => (response, None),
        };
        let response = crate::durable::settled(response, session).await;
        // The store work is counted until the response head is ready (a
        // streaming guest may go on reading after that).
        if logged {
            out!(
                "[host] {method} {path} {} {} {:.1}ms {stats}",
                response.status().as_u16(),
                component.as_deref().unwrap_or("-"),
                started.elapsed().as_secs_f64() * 1000.0
            );
        }
        response
    }

    async fn dispatch<B>(
        &self,
        req: Request<B>,
        client: SocketAddr,
        stats: Arc<KvStats>,
        session: Arc<Session>,
    ) -> Result<(Response<HyperOutgoingBody>, Arc<str>), Response<HyperOutgoingBody>>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let path = req.uri().path().to_string();
        let Some(relative) = strip_base(&self.base, &path) else {
            return Err(plain(StatusCode::NOT_FOUND, "Not Found"));
        };
        let Some((route, index, matched)) = self.router.route(relative) else {
            return Err(plain(StatusCode::NOT_FOUND, "Not Found"));
        };
        let component = &self.components[index];
        let req = with_spin_headers(req, &self.base, route, &matched, client);
        match self.run(component, req, stats, session).await {
            Ok(response) => Ok((response, component.id.clone())),
            Err(e) if e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>().is_some() => {
                eprintln!("[host] every instance slot is busy: answering 503 to {path} (see --max-instances)");
                Err(busy())
            }
            Err(e) if e.downcast_ref::<TimedOut>().is_some() => {
                eprintln!(
                    "[host] component `{}` did not answer {path} in time: answering 504 (see --request-timeout)",
                    component.id
                );
                Err(json_error(
                    StatusCode::GATEWAY_TIMEOUT,
                    "timeout",
                    "The server took too long to answer; try again.",
                    None,
                ))
            }
            Err(e) => {
                eprintln!("[host] component `{}` failed on {path}: {e:?}", component.id);
                Err(plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"))
            }
        }
    }

    async fn run<B>(
        &self,
        component: &LoadedComponent,
        req: Request<B>,
        stats: Arc<KvStats>,
        session: Arc<Session>,
    ) -> Result<Response<HyperOutgoingBody>>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let mut store = component.new_store(self.kv.clone(), self.variables.clone(), stats, session)?;
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let incoming = store.data_mut().http().new_incoming_request(Scheme::Http, req)?;
        let outparam = store.data_mut().http().new_response_outparam(sender)?;
        let pre = component.pre().clone();
        // The guest keeps running after it sets the response head, to stream the body.
        let task = tokio::task::spawn(async move {
            let proxy = pre.instantiate_async(&mut store).await?;
            proxy.wasi_http_incoming_handler().call_handle(&mut store, incoming, outparam).await
        });
        let mut unanswered = StopUnlessAnswered(Some(task.abort_handle()));
        let answer = match self.request_timeout {
            Some(timeout) => match tokio::time::timeout(timeout, receiver).await {
                Ok(answer) => answer,
                Err(_) => return Err(TimedOut(timeout).into()),
            },
            None => receiver.await,
        };
        match answer {
            Ok(Ok(mut response)) => {
                let task = unanswered.0.take().expect("taken only here");
                response.extensions_mut().insert(GuestTask(task));
                Ok(response)
            }
            Ok(Err(code)) => anyhow::bail!("guest answered with an error: {code:?}"),
            Err(_) => match task.await {
                Ok(Ok(())) => anyhow::bail!("guest returned without setting a response"),
                Ok(Err(trap)) => Err(trap.into()),
                Err(join) => Err(anyhow::anyhow!(join)),
            },
        }
    }
}

fn strip_base<'a>(base: &str, path: &'a str) -> Option<&'a str> {
    let base = base.trim_end_matches('/');
    if base.is_empty() {
        return Some(path);
    }
    match path.strip_prefix(base) {
        Some("") => Some("/"),
        Some(rest) if rest.starts_with('/') => Some(rest),
        _ => None,
    }
}

/// Adds the headers Spin gives every request (and drops any a client sent itself).
fn with_spin_headers<B>(
    mut req: Request<B>,
    base: &str,
    route: &RoutePattern,
    matched: &RouteMatch,
    client: SocketAddr,
) -> Request<B> {
    let host = req
        .headers()
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| "localhost".to_string());
    let path_and_query = req.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
    let full_url = format!("http://{host}{path_and_query}");
    let base_trimmed = base.trim_end_matches('/');
    let headers = req.headers_mut();
    let spin_headers: Vec<_> = headers.keys().filter(|k| k.as_str().starts_with("spin-")).cloned().collect();
    for name in spin_headers {
        headers.remove(name);
    }
    let mut set = |name: String, value: &str| {
        if let (Ok(name), Ok(value)) =
            (hyper::header::HeaderName::try_from(name), hyper::header::HeaderValue::try_from(value))
        {
            headers.insert(name, value);
        }
    };
    set("spin-full-url".into(), &full_url);
    set("spin-path-info".into(), &matched.path_info);
    set("spin-matched-route".into(), &format!("{base_trimmed}{}", route.raw));
    set("spin-base-path".into(), base);
    set("spin-raw-component-route".into(), &route.raw);
    set("spin-component-route".into(), route.without_wildcard());
    set("spin-client-addr".into(), &client.to_string());
    for (name, value) in &matched.params {
        set(format!("spin-path-match-{}", name.to_ascii_lowercase()), value);
    }
    if !req.headers().contains_key(hyper::header::HOST) {
        req.headers_mut().insert(hyper::header::HOST, hyper::header::HeaderValue::from_static("localhost"));
    }
    req
}

pub fn plain(status: StatusCode, text: &'static str) -> Response<HyperOutgoingBody> {
    let body = Full::new(Bytes::from_static(text.as_bytes())).map_err(|never| match never {}).boxed_unsync();
    Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .header("x-content-type-options", "nosniff")
        .body(body)
        .expect("a static response is always valid")
}

/// The API's error shape, `{"error":{"code","message"}}`, for answers the
/// host gives itself; with `retry_after`, a `Retry-After` in seconds.
pub fn json_error(
    status: StatusCode,
    code: &str,
    message: &str,
    retry_after: Option<u32>,
) -> Response<HyperOutgoingBody> {
    let text = serde_json::json!({ "error": { "code": code, "message": message } }).to_string();
    let body = Full::new(Bytes::from(text)).map_err(|never| match never {}).boxed_unsync();
    let mut response = Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("x-content-type-options", "nosniff")
        .header("cache-control", "no-store");
    if let Some(seconds) = retry_after {
        response = response.header("retry-after", seconds.to_string());
    }
    response.body(body).expect("a JSON error is always a valid response")
}

/// Every instance slot is taken: the client should come back shortly.
fn busy() -> Response<HyperOutgoingBody> {
    let message = "The server is at its limit of concurrent requests; try again in a second.";
    json_error(StatusCode::SERVICE_UNAVAILABLE, "busy", message, Some(1))
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish.
/// Every request from the network goes through `limits` ([`crate::intake`]).
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let admission = Admission::new(limits);
    let mut http = http1::Builder::new();
    // Also bounds how long an idle keep-alive connection waits for its next request.
    http.keep_alive(true).timer(TokioTimer::new()).header_read_timeout(admission.limits().header_timeout);
    let graceful = GracefulShutdown::new();
    // Event streams end as soon as the host starts stopping (see `intake`).
    let (announce_stop, stopping) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (stream, client) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // e.g. too many open files: keep serving the connections we have.
                    eprintln!("[host] accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let (app, admission) = (app.clone(), admission.clone());
        // Closes this connection when a response outlives --response-timeout.
        let closer = Arc::new(tokio::sync::Notify::new());
        let service = service_fn({
            let (closer, stopping) = (closer.clone(), stopping.clone());
            move |req| {
                let (app, admission, closer, stopping) =
                    (app.clone(), admission.clone(), closer.clone(), stopping.clone());
                async move {
                    let response = crate::intake::serve(&app, &admission, req, client, &closer, stopping).await;
                    Ok::<_, std::convert::Infallible>(response)
                }
            }
        });
        let connection = http.serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            tokio::select! {
                result = connection => if let Err(e) = result {
                    // A client that left mid-request, or sent no headers in time (closed on purpose).
                    if !e.is_incomplete_message() && !e.is_timeout() {
                        eprintln!("[host] connection from {client}: {e}");
                    }
                },
                // Dropping the connection closes its socket and its response body.
                () = closer.notified() => {}
            }
        });
    }
    drop(listener);
    out!("[host] stopping: waiting for in-flight requests");
    announce_stop.send_replace(true);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN_TIMEOUT) => eprintln!("[host] some requests did not finish in time"),
    }
    Ok(())
}

/// POSTs to the sweeper route every `every`, through the same path as any request.
pub fn spawn_sweeper(app: Arc<App>, route: &'static str, every: Duration) {
    let token = app.variables().app("sweeper_token").map(str::to_string);
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        interval.tick().await;
        let mut last_failure = None;
        loop {
            interval.tick().await;
            let mut req = Request::post(route).header("host", "localhost").header("content-type", "application/json");
            if let Some(token) = &token {
                req = req.header("authorization", format!("Bearer {token}"));
            }
            let req = req.extension(Unlogged).body(Full::new(Bytes::from_static(b"{}"))).context("sweeper request");
            let Ok(req) = req else { continue };
            let response = app.handle(req, SocketAddr::from(([127, 0, 0, 1], 0))).await;
            // Said once when it starts failing and once when it recovers, not every tick.
            let failing = (!response.status().is_success()).then(|| response.status());
            if failing != last_failure {
                match failing {
                    Some(status) => eprintln!("[host] the sweeper answers {status}; it is tried again every {every:?}"),
                    None => eprintln!("[host] the sweeper works again"),
                }
                last_failure = failing;
            }
        }
    });
}
