//! The Spin interfaces guests import beyond WASI: `fermyon:spin/key-value`,
//! `fermyon:spin/variables` and `wasi:keyvalue` (store, atomics, batch).
//! Each store access is checked against the component's `key_value_stores`.

use std::sync::Arc;
use wasmtime::component::{Resource, ResourceTable};

use crate::kv::{KvBackend, KvError};
use crate::manifest::Component;
use crate::variables::{ComponentVariableError, Variables};

pub mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "spinpresso:host/spin-imports",
        imports: { default: trappable },
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
}

fn log_kv_error(e: KvError) -> String {
    eprintln!("[host] key-value error: {e}");
    e.to_string()
}

// ---- fermyon:spin/key-value@2.0.0 ----

impl spin_kv::Host for SpinContext {}

impl spin_kv::HostStore for SpinContext {
    fn open(&mut self, label: String) -> wasmtime::Result<Result<Resource<OpenStore>, spin_kv::Error>> {
        Ok(match self.check_open(&label) {
            Ok(()) => Ok(self.table.push(OpenStore { label })?),
            Err(OpenError::AccessDenied) => Err(spin_kv::Error::AccessDenied),
            Err(OpenError::NoSuchStore) => Err(spin_kv::Error::NoSuchStore),
        })
    }

    fn get(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, spin_kv::Error>> {
        let label = self.label(&store)?;
        Ok(self.kv.get(&label, &key).map_err(|e| spin_kv::Error::Other(log_kv_error(e))))
    }

    fn set(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), spin_kv::Error>> {
        let label = self.label(&store)?;
        Ok(self.kv.set(&label, &key, &value).map_err(|e| spin_kv::Error::Other(log_kv_error(e))))
    }

    fn delete(&mut self, store: Resource<OpenStore>, key: String) -> wasmtime::Result<Result<(), spin_kv::Error>> {
        let label = self.label(&store)?;
        Ok(self.kv.delete(&label, &key).map_err(|e| spin_kv::Error::Other(log_kv_error(e))))
    }

    fn exists(&mut self, store: Resource<OpenStore>, key: String) -> wasmtime::Result<Result<bool, spin_kv::Error>> {
        let label = self.label(&store)?;
        Ok(self.kv.exists(&label, &key).map_err(|e| spin_kv::Error::Other(log_kv_error(e))))
    }

    fn get_keys(&mut self, store: Resource<OpenStore>) -> wasmtime::Result<Result<Vec<String>, spin_kv::Error>> {
        let label = self.label(&store)?;
        Ok(self.kv.keys(&label).map_err(|e| spin_kv::Error::Other(log_kv_error(e))))
    }

    fn drop(&mut self, store: Resource<OpenStore>) -> wasmtime::Result<()> {
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

impl wasi_kv::Host for SpinContext {
    fn open(&mut self, identifier: String) -> wasmtime::Result<Result<Resource<OpenStore>, wasi_kv::Error>> {
        Ok(match self.check_open(&identifier) {
            Ok(()) => Ok(self.table.push(OpenStore { label: identifier })?),
            Err(OpenError::AccessDenied) => Err(wasi_kv::Error::AccessDenied),
            Err(OpenError::NoSuchStore) => Err(wasi_kv::Error::NoSuchStore),
        })
    }
}

impl wasi_kv::HostBucket for SpinContext {
    fn get(
        &mut self,
        bucket: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, wasi_kv::Error>> {
        let label = self.label(&bucket)?;
        Ok(self.kv.get(&label, &key).map_err(wasi_error))
    }

    fn set(
        &mut self,
        bucket: Resource<OpenStore>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), wasi_kv::Error>> {
        let label = self.label(&bucket)?;
        Ok(self.kv.set(&label, &key, &value).map_err(wasi_error))
    }

    fn delete(&mut self, bucket: Resource<OpenStore>, key: String) -> wasmtime::Result<Result<(), wasi_kv::Error>> {
        let label = self.label(&bucket)?;
        Ok(self.kv.delete(&label, &key).map_err(wasi_error))
    }

    fn exists(&mut self, bucket: Resource<OpenStore>, key: String) -> wasmtime::Result<Result<bool, wasi_kv::Error>> {
        let label = self.label(&bucket)?;
        Ok(self.kv.exists(&label, &key).map_err(wasi_error))
    }

    /// All keys in one page, as Spin's own host does.
    fn list_keys(
        &mut self,
        bucket: Resource<OpenStore>,
        _cursor: Option<String>,
    ) -> wasmtime::Result<Result<wasi_kv::KeyResponse, wasi_kv::Error>> {
        let label = self.label(&bucket)?;
        Ok(self.kv.keys(&label).map(|keys| wasi_kv::KeyResponse { keys, cursor: None }).map_err(wasi_error))
    }

    fn drop(&mut self, bucket: Resource<OpenStore>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

// ---- wasi:keyvalue/atomics@0.2.0-draft2 ----

impl atomics::Host for SpinContext {
    fn increment(
        &mut self,
        bucket: Resource<OpenStore>,
        key: String,
        delta: i64,
    ) -> wasmtime::Result<Result<i64, wasi_kv::Error>> {
        let label = self.label(&bucket)?;
        Ok(self.kv.increment(&label, &key, delta).map_err(wasi_error))
    }

    fn swap(&mut self, cas: Resource<CasHandle>, value: Vec<u8>) -> wasmtime::Result<Result<(), atomics::CasError>> {
        let handle = self.table.delete(cas)?;
        match self.kv.compare_and_swap(&handle.store, &handle.key, handle.seen.as_deref(), &value) {
            Ok(true) => Ok(Ok(())),
            Ok(false) => {
                // Hand back a handle that has seen the value that won, ready for a retry.
                let seen = match self.kv.get(&handle.store, &handle.key) {
                    Ok(seen) => seen,
                    Err(e) => return Ok(Err(atomics::CasError::StoreError(wasi_error(e)))),
                };
                let retry = self.table.push(CasHandle { seen, ..handle })?;
                Ok(Err(atomics::CasError::CasFailed(retry)))
            }
            Err(e) => Ok(Err(atomics::CasError::StoreError(wasi_error(e)))),
        }
    }
}

impl atomics::HostCas for SpinContext {
    fn new(
        &mut self,
        bucket: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<Resource<CasHandle>, wasi_kv::Error>> {
        let label = self.label(&bucket)?;
        let seen = match self.kv.get(&label, &key) {
            Ok(seen) => seen,
            Err(e) => return Ok(Err(wasi_error(e))),
        };
        Ok(Ok(self.table.push(CasHandle { store: label, key, seen })?))
    }

    /// The value the handle was made with (read by `new`, or by the failed
    /// swap that handed it back): the one the next swap compares against.
    fn current(&mut self, cas: Resource<CasHandle>) -> wasmtime::Result<Result<Option<Vec<u8>>, wasi_kv::Error>> {
        Ok(Ok(self.table.get(&cas)?.seen.clone()))
    }

    fn drop(&mut self, cas: Resource<CasHandle>) -> wasmtime::Result<()> {
        self.table.delete(cas)?;
        Ok(())
    }
}

// ---- wasi:keyvalue/batch@0.2.0-draft2 ----

impl batch::Host for SpinContext {
    fn get_many(
        &mut self,
        bucket: Resource<OpenStore>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<(String, Option<Vec<u8>>)>, wasi_kv::Error>> {
        let label = self.label(&bucket)?;
        Ok(self.kv.get_many(&label, &keys).map_err(wasi_error))
    }

    fn set_many(
        &mut self,
        bucket: Resource<OpenStore>,
        entries: Vec<(String, Vec<u8>)>,
    ) -> wasmtime::Result<Result<(), wasi_kv::Error>> {
        let label = self.label(&bucket)?;
        Ok(self.kv.set_many(&label, &entries).map_err(wasi_error))
    }

    fn delete_many(
        &mut self,
        bucket: Resource<OpenStore>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<(), wasi_kv::Error>> {
        let label = self.label(&bucket)?;
        Ok(self.kv.delete_many(&label, &keys).map_err(wasi_error))
    }
}
