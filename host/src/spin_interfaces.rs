//! The Spin interfaces guests import beyond WASI: `fermyon:spin/key-value`,
//! `fermyon:spin/variables` and `wasi:keyvalue` (store, atomics, batch).
//! Each store access is checked against the component's `key_value_stores`.

use std::sync::Arc;
use wasmtime::component::{Resource, ResourceTable};

use crate::kv::{KvBackend, KvError, KvOp, KvOut, KvResult};
use crate::manifest::Component;
use crate::variables::{ComponentVariableError, Variables};

pub mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "spinpresso:host/spin-imports",
        // Store calls wait for the store without holding the worker thread.
        imports: {
            "fermyon:spin/key-value": async | trappable,
            "wasi:keyvalue": async | trappable,
            default: trappable,
        },
        with: {
            "fermyon:spin/key-value.store": super::OpenStore,
            "wasi:keyvalue/store.bucket": super::OpenStore,
            "wasi:keyvalue/atomics.cas": super::CasHandle,
        },
    });
}

use bindings::fermyon::spin::{key_value as spin_kv, variables as spin_vars};
use bindings::wasi::keyvalue::{atomics, batch, store as wasi_kv};

/// What a guest's Spin imports can reach: its own stores and variables.
pub struct SpinContext {
    pub component: Arc<Component>,
    pub kv: Arc<dyn KvBackend>,
    pub variables: Arc<Variables>,
    pub table: ResourceTable,
}

pub struct OpenStore {
    label: String,
}

pub struct CasHandle {
    store: String,
    key: String,
    /// The value seen by `new` (or by the failed swap that made this handle); the swap compares against it.
    seen: Option<Vec<u8>>,
}

enum OpenError {
    AccessDenied,
    NoSuchStore,
}

impl SpinContext {
    /// Like Spin: a label the component did not declare is `access-denied`;
    /// a declared label with no store behind it is `no-such-store`.
    fn check_open(&self, label: &str) -> Result<(), OpenError> {
        if !self.component.key_value_stores.iter().any(|s| s == label) {
            return Err(OpenError::AccessDenied);
        }
        if !self.kv.has_store(label) {
            return Err(OpenError::NoSuchStore);
        }
        Ok(())
    }

    fn label(&self, store: &Resource<OpenStore>) -> wasmtime::Result<String> {
        Ok(self.table.get(store)?.label.clone())
    }

    /// Runs `op` on an open store; the outer error is a trap (a stale handle).
    async fn run(&mut self, store: &Resource<OpenStore>, op: KvOp) -> wasmtime::Result<KvResult<KvOut>> {
        let pending = self.kv.submit(&self.table.get(store)?.label, op);
        Ok(pending.await)
    }
}

fn log_kv_error(e: KvError) -> String {
    eprintln!("[host] key-value error: {e}");
    e.to_string()
}

// ---- fermyon:spin/key-value@2.0.0 ----

impl spin_kv::Host for SpinContext {}

impl spin_kv::HostStore for SpinContext {
    async fn open(&mut self, label: String) -> wasmtime::Result<Result<Resource<OpenStore>, spin_kv::Error>> {
        Ok(match self.check_open(&label) {
            Ok(()) => Ok(self.table.push(OpenStore { label })?),
            Err(OpenError::AccessDenied) => Err(spin_kv::Error::AccessDenied),
            Err(OpenError::NoSuchStore) => Err(spin_kv::Error::NoSuchStore),
        })
    }

    async fn get(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, spin_kv::Error>> {
        Ok(self.run(&store, KvOp::Get(key)).await?.and_then(KvOut::value).map_err(spin_error))
    }

    async fn set(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), spin_kv::Error>> {
        Ok(self.run(&store, KvOp::Set(key, value)).await?.and_then(KvOut::done).map_err(spin_error))
    }

    async fn delete(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<(), spin_kv::Error>> {
        Ok(self.run(&store, KvOp::Delete(key)).await?.and_then(KvOut::done).map_err(spin_error))
    }

    async fn exists(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<bool, spin_kv::Error>> {
        Ok(self.run(&store, KvOp::Exists(key)).await?.and_then(KvOut::exists).map_err(spin_error))
    }

    async fn get_keys(&mut self, store: Resource<OpenStore>) -> wasmtime::Result<Result<Vec<String>, spin_kv::Error>> {
        Ok(self.run(&store, KvOp::Keys).await?.and_then(KvOut::keys).map_err(spin_error))
    }

    async fn drop(&mut self, store: Resource<OpenStore>) -> wasmtime::Result<()> {
        self.table.delete(store)?;
        Ok(())
    }
}

// ---- fermyon:spin/variables@2.0.0 ----

impl spin_vars::Host for SpinContext {
    fn get(&mut self, name: String) -> wasmtime::Result<Result<String, spin_vars::Error>> {
        Ok(self.variables.for_component(&self.component, &name).map_err(|e| match e {
            ComponentVariableError::InvalidName(m) => spin_vars::Error::InvalidName(m),
            ComponentVariableError::Undefined(m) => spin_vars::Error::Undefined(m),
        }))
    }
}

// ---- wasi:keyvalue/store@0.2.0-draft2 ----

fn wasi_error(e: KvError) -> wasi_kv::Error {
    wasi_kv::Error::Other(log_kv_error(e))
}

fn spin_error(e: KvError) -> spin_kv::Error {
    spin_kv::Error::Other(log_kv_error(e))
}

impl wasi_kv::Host for SpinContext {
    async fn open(&mut self, identifier: String) -> wasmtime::Result<Result<Resource<OpenStore>, wasi_kv::Error>> {
        Ok(match self.check_open(&identifier) {
            Ok(()) => Ok(self.table.push(OpenStore { label: identifier })?),
            Err(OpenError::AccessDenied) => Err(wasi_kv::Error::AccessDenied),
            Err(OpenError::NoSuchStore) => Err(wasi_kv::Error::NoSuchStore),
        })
    }
}

impl wasi_kv::HostBucket for SpinContext {
    async fn get(
        &mut self,
        bucket: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, wasi_kv::Error>> {
        Ok(self.run(&bucket, KvOp::Get(key)).await?.and_then(KvOut::value).map_err(wasi_error))
    }

    async fn set(
        &mut self,
        bucket: Resource<OpenStore>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), wasi_kv::Error>> {
        Ok(self.run(&bucket, KvOp::Set(key, value)).await?.and_then(KvOut::done).map_err(wasi_error))
    }

    async fn delete(
        &mut self,
        bucket: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<(), wasi_kv::Error>> {
        Ok(self.run(&bucket, KvOp::Delete(key)).await?.and_then(KvOut::done).map_err(wasi_error))
    }

    async fn exists(
        &mut self,
        bucket: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<bool, wasi_kv::Error>> {
        Ok(self.run(&bucket, KvOp::Exists(key)).await?.and_then(KvOut::exists).map_err(wasi_error))
    }

    /// All keys in one page, as Spin's own host does.
    async fn list_keys(
        &mut self,
        bucket: Resource<OpenStore>,
        _cursor: Option<String>,
    ) -> wasmtime::Result<Result<wasi_kv::KeyResponse, wasi_kv::Error>> {
        let keys = self.run(&bucket, KvOp::Keys).await?.and_then(KvOut::keys);
        Ok(keys.map(|keys| wasi_kv::KeyResponse { keys, cursor: None }).map_err(wasi_error))
    }

    async fn drop(&mut self, bucket: Resource<OpenStore>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

// ---- wasi:keyvalue/atomics@0.2.0-draft2 ----

impl atomics::Host for SpinContext {
    async fn increment(
        &mut self,
        bucket: Resource<OpenStore>,
        key: String,
        delta: i64,
    ) -> wasmtime::Result<Result<i64, wasi_kv::Error>> {
        Ok(self.run(&bucket, KvOp::Increment(key, delta)).await?.and_then(KvOut::counter).map_err(wasi_error))
    }

    async fn swap(
        &mut self,
        cas: Resource<CasHandle>,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), atomics::CasError>> {
        let CasHandle { store, key, seen } = self.table.delete(cas)?;
        let op = KvOp::Swap { key: key.clone(), expected: seen, new: value };
        match self.kv.submit(&store, op).await {
            Ok(KvOut::Swapped) => Ok(Ok(())),
            // Hand back a handle that has seen the value that won, ready for a retry.
            Ok(KvOut::NotSwapped(seen)) => {
                let retry = self.table.push(CasHandle { store, key, seen })?;
                Ok(Err(atomics::CasError::CasFailed(retry)))
            }
            Ok(other) => Ok(Err(atomics::CasError::StoreError(wasi_error(other.swapped().unwrap_err())))),
            Err(e) => Ok(Err(atomics::CasError::StoreError(wasi_error(e)))),
        }
    }
}

impl atomics::HostCas for SpinContext {
    async fn new(
        &mut self,
        bucket: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<Resource<CasHandle>, wasi_kv::Error>> {
        let store = self.label(&bucket)?;
        let seen = match self.run(&bucket, KvOp::Get(key.clone())).await?.and_then(KvOut::value) {
            Ok(seen) => seen,
            Err(e) => return Ok(Err(wasi_error(e))),
        };
        Ok(Ok(self.table.push(CasHandle { store, key, seen })?))
    }

    /// The value the handle was made with (read by `new`, or by the failed
    /// swap that handed it back): the one the next swap compares against.
    async fn current(&mut self, cas: Resource<CasHandle>) -> wasmtime::Result<Result<Option<Vec<u8>>, wasi_kv::Error>> {
        Ok(Ok(self.table.get(&cas)?.seen.clone()))
    }

    async fn drop(&mut self, cas: Resource<CasHandle>) -> wasmtime::Result<()> {
        self.table.delete(cas)?;
        Ok(())
    }
}

// ---- wasi:keyvalue/batch@0.2.0-draft2 ----

impl batch::Host for SpinContext {
    async fn get_many(
        &mut self,
        bucket: Resource<OpenStore>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<(String, Option<Vec<u8>>)>, wasi_kv::Error>> {
        Ok(self.run(&bucket, KvOp::GetMany(keys)).await?.and_then(KvOut::values).map_err(wasi_error))
    }

    async fn set_many(
        &mut self,
        bucket: Resource<OpenStore>,
        entries: Vec<(String, Vec<u8>)>,
    ) -> wasmtime::Result<Result<(), wasi_kv::Error>> {
        Ok(self.run(&bucket, KvOp::SetMany(entries)).await?.and_then(KvOut::done).map_err(wasi_error))
    }

    async fn delete_many(
        &mut self,
        bucket: Resource<OpenStore>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<(), wasi_kv::Error>> {
        Ok(self.run(&bucket, KvOp::DeleteMany(keys)).await?.and_then(KvOut::done).map_err(wasi_error))
    }
}
