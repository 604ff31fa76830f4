//! What one request must wait for before anything it learnt leaves the host.
//!
//! A store may answer an operation before the transaction holding it is
//! committed (SQLite runs many requests' operations in one transaction).
//! The request's [`Session`] remembers which of those transactions its
//! answers came from; its response head, and each chunk of its body, go out
//! only once they are all committed ([`Session::settle`]). If one of them
//! failed instead, the request fails, and its later operations are refused,
//! since they could build on writes that were lost.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use crate::kv::{KvError, KvResult};
use crate::kv_sqlite::lock;

/// A store whose answers can come before their commit.
pub trait Transactions: Send + Sync {
    /// The session stopped running in transaction `epoch` (its response is
    /// waiting): once no session runs in it, it can commit without waiting
    /// for more operations.
    fn release(&self, epoch: u64);
    /// Whether every transaction up to `epoch` is committed or failed.
    fn decided(&self, epoch: u64) -> bool;
    /// Resolves once every transaction up to `epoch` is committed or failed.
    fn wait(&self, epoch: u64) -> Pin<Box<dyn Future<Output = ()> + Send>>;
    /// Whether a transaction between `first` and `last` (both included) failed.
    fn failed_between(&self, first: u64, last: u64) -> bool;
}

/// The transactions of one store that a request's answers came from.
struct Slot {
    store: Arc<dyn Transactions>,
    first: u64,
    last: u64,
    /// The transaction the request is running in (counted by the store as
    /// one reason to keep it open), until it next waits.
    running_in: Option<u64>,
}

/// One request's dealings with stores whose answers come before their commit.
#[derive(Default)]
pub struct Session {
    slots: Mutex<Vec<Slot>>,
}

fn same(a: &Arc<dyn Transactions>, b: &Arc<dyn Transactions>) -> bool {
    std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b))
}

impl Session {
    /// Records an answer from transaction `epoch` of `store`; true if the
    /// request was not yet counted as running in it.
    pub fn enter(&self, store: &Arc<dyn Transactions>, epoch: u64) -> bool {
        let mut slots = lock(&self.slots);
        match slots.iter_mut().find(|s| same(&s.store, store)) {
            Some(slot) => {
                slot.last = slot.last.max(epoch);
                slot.running_in.replace(epoch) != Some(epoch)
            }
            None => {
                slots.push(Slot { store: store.clone(), first: epoch, last: epoch, running_in: Some(epoch) });
                true
            }
        }
    }

    /// Whether this request saw a transaction of `store` that failed: its
    /// later operations there must be refused.
    pub fn lost_writes_in(&self, store: &Arc<dyn Transactions>) -> bool {
        let seen = lock(&self.slots).iter().find(|s| same(&s.store, store)).map(|s| (s.first, s.last));
        // Outside the session's lock: the store takes its own locks first.
        seen.is_some_and(|(first, last)| store.failed_between(first, last))
    }

    /// Stops counting this request as running in any open transaction.
    fn release(&self) {
        let released: Vec<(Arc<dyn Transactions>, u64)> = lock(&self.slots)
            .iter_mut()
            .filter_map(|s| s.running_in.take().map(|epoch| (s.store.clone(), epoch)))
            .collect();
        // Outside the session's lock: releasing may commit, and the commit
        // may answer operations of this same session.
        for (store, epoch) in released {
            store.release(epoch);
        }
    }

    /// Whether everything answered so far is committed (nothing to wait for).
    pub fn is_settled(&self) -> bool {
        lock(&self.slots).iter().all(|s| s.store.decided(s.last))
    }

    /// Waits until every transaction this request's answers came from is
    /// committed; an error if one failed (the request must not report success).
    pub fn settle(self: &Arc<Self>) -> impl Future<Output = KvResult<()>> + Send + 'static {
        self.release();
        let pending: Vec<(Arc<dyn Transactions>, u64, u64)> =
            lock(&self.slots).iter().map(|s| (s.store.clone(), s.first, s.last)).collect();
        async move {
            for (store, first, last) in pending {
                if !store.decided(last) {
                    store.wait(last).await;
                }
                if store.failed_between(first, last) {
                    return Err(lost());
                }
            }
            Ok(())
        }
    }
}

impl Drop for Session {
    /// A request that ends without waiting (an error, a dropped connection)
    /// no longer holds its transactions open.
    fn drop(&mut self) {
        self.release();
    }
}

pub fn lost() -> KvError {
    KvError::Other("the key-value store lost a write of this request (its transaction failed)".into())
}
