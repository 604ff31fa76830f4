//! Compiling components once, linking the host interfaces, and making one
//! fresh instance per request from a pre-instantiated component.

use anyhow::{Context, Result};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store, UpdateDeadline};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::{
    Error as HttpError, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView,
};

use crate::compile_cache::CompileCache;
use crate::guest_output::{GuestOutput, Stream};
use crate::kv::{Counted, KvBackend, KvStats, Session};
use crate::manifest::Component;
use crate::spin_interfaces::{bindings::SpinImports, SpinContext};
use crate::variables::Variables;

/// How much of a reused instance memory may stay resident. With Linux's
/// `PAGEMAP_SCAN` (6.7+), wasmtime finds the pages a request dirtied and
/// restores only those with `memset`: no `madvise`, no page faults and no
/// TLB shootdowns on the next request in the slot (measured: the no-op's
/// requests/s +40 %, about 20 page faults per flow request down to none).
/// Only pages a guest really touched stay resident, and at most this much
/// per slot. Without `PAGEMAP_SCAN` the first this-many bytes are reset
/// with `memset` and the rest decommitted.
const KEEP_RESIDENT: usize = 1 << 20;

/// How often a running guest yields to other requests.
const YIELD_EVERY: Duration = Duration::from_millis(10);

/// Everything one request's instance owns.
pub struct HostState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    outbound: NoOutboundHttp,
    table: ResourceTable,
    spin: SpinContext,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.outbound }
    }
}

/// Outgoing HTTP from a guest. Spin allows a component only the hosts its
/// `allowed_outbound_hosts` lists, and Spinpresso's components list none:
/// every request is denied, and no HTTP client is compiled into the host.
struct NoOutboundHttp;

type Sent = Box<dyn Future<Output = Result<(), HttpError>> + Send>;

impl WasiHttpHooks for NoOutboundHttp {
    fn send_request(
        &mut self,
        _request: hyper::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _sent: Sent,
    ) -> Box<dyn Future<Output = Result<(hyper::Response<WasiBody>, Sent), HttpError>> + Send> {
        Box::new(async { Err(HttpError::HttpRequestDenied) })
    }
}

/// A component compiled and linked once, instantiated per request.
pub struct LoadedComponent {
    pub spec: Arc<Component>,
    pub id: Arc<str>,
    /// Whether the guest's standard output (an access log, typically) is
    /// shown; its standard error always is.
    pub log_stdout: bool,
    pre: ProxyPre<HostState>,
}

/// How many instances may run at once, and what each may use.
#[derive(Debug, Clone, Copy)]
pub struct InstanceLimits {
    /// Concurrent component instances (each request or open stream holds one).
    pub instances: u32,
    /// The most linear memory one instance may grow to.
    pub max_memory_bytes: usize,
}

impl Default for InstanceLimits {
    fn default() -> Self {
        Self { instances: 1000, max_memory_bytes: 128 << 20 }
    }
}

/// The engine.
///
/// Instances come from wasmtime's pooling allocator: memories, tables and
/// stacks are reserved once and reused, so a request costs no `mmap`/`munmap`
/// of its own (instantiation drops from tens of microseconds to a few). When
/// every slot is taken, instantiation fails with a `PoolConcurrencyLimitError`,
/// which the server answers with 503 + Retry-After.
pub fn new_engine(limits: InstanceLimits) -> Result<Engine> {
    let mut config = Config::new();
    config.epoch_interruption(true);
    let mut pool = wasmtime::PoolingAllocationConfig::new();
    // A Spin HTTP component built by Rust has one memory and a few core
    // instances and tables (its module plus the canonical-ABI shims).
    pool.total_component_instances(limits.instances)
        .total_core_instances(limits.instances.saturating_mul(4))
        .total_memories(limits.instances)
        .total_tables(limits.instances.saturating_mul(4))
        .total_stacks(limits.instances)
        .max_memory_size(limits.max_memory_bytes)
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(16 << 10)
        .pagemap_scan(wasmtime::Enabled::Auto);
    config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
    // `perf record` can name guest functions when the host writes a perf map.
    if std::env::var_os("SPINPRESSO_PERF_MAP").is_some() {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    let engine = Engine::new(&config)?;
    // Epoch ticks let a busy guest yield instead of holding a worker thread.
    let ticker = engine.weak();
    std::thread::Builder::new().name("epoch-ticker".into()).spawn(move || {
        while let Some(engine) = ticker.upgrade() {
            engine.increment_epoch();
            drop(engine);
            std::thread::sleep(YIELD_EVERY);
        }
    })?;
    Ok(engine)
}

fn linker(engine: &Engine) -> Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    SpinImports::add_to_linker::<HostState, HasSelf<SpinContext>>(&mut linker, |state| &mut state.spin)?;
    Ok(linker)
}

impl LoadedComponent {
    /// Compiles `spec`'s component, or loads it from `cache` when kept there.
    pub fn load(engine: &Engine, spec: Component, cache: &CompileCache) -> Result<Self> {
        let bytes = std::fs::read(&spec.source).with_context(|| {
            format!(
                "component `{}`: cannot read {} (build it first, e.g. with `up --build`)",
                spec.id,
                spec.source.display()
            )
        })?;
        let wasm = cache
            .component(engine, &bytes)
            .with_context(|| format!("component `{}`: {} is not a usable component", spec.id, spec.source.display()))?;
        let linker = linker(engine)?;
        let pre = linker
            .instantiate_pre(&wasm)
            .and_then(ProxyPre::new)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("component `{}` imports something this host does not provide", spec.id))?;
        Ok(Self { id: spec.id.as_str().into(), spec: Arc::new(spec), log_stdout: true, pre })
    }

    /// A fresh store for one request: WASI with the component's files,
    /// environment and prefixed stdio, plus the Spin interfaces.
    pub fn new_store(
        &self,
        kv: Arc<dyn KvBackend>,
        variables: Arc<Variables>,
        stats: Arc<KvStats>,
        session: Arc<Session>,
    ) -> Result<Store<HostState>> {
        let mut wasi = WasiCtx::builder();
        if self.log_stdout {
            wasi.stdout(GuestOutput::new(self.id.clone(), Stream::Stdout));
        }
        wasi.stderr(GuestOutput::new(self.id.clone(), Stream::Stderr));
        for (name, value) in &self.spec.environment {
            wasi.env(name, value);
        }
        for (host_path, guest_path) in &self.spec.files {
            wasi.preopened_dir(host_path, guest_path, FsPerms::ReadOnly).map_err(anyhow::Error::from).with_context(
                || format!("component `{}`: cannot mount {} at {guest_path}", self.id, host_path.display()),
            )?;
        }
        let state = HostState {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            outbound: NoOutboundHttp,
            table: ResourceTable::new(),
            spin: SpinContext {
                component: self.spec.clone(),
                kv: Arc::new(Counted { inner: kv, stats, session }),
                variables,
                table: ResourceTable::new(),
            },
        };
        let mut store = Store::new(self.pre.engine(), state);
        // A new store's deadline is epoch 0, already past: without this every
        // request would yield once as it starts (measured: ~35 K instructions).
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|_| Ok(UpdateDeadline::Yield(1)));
        Ok(store)
    }

    pub fn pre(&self) -> &ProxyPre<HostState> {
        &self.pre
    }
}
