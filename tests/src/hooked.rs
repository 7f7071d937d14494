//! A real backend under watch: a test's hook runs before each `apply`, and every other call
//! goes straight to the backend. Tests that count applies (the seeds' `Recording`) or hold
//! one at a door (flush.rs) write only their hook, not a whole delegating backend.

use std::future::Future;
use std::ops::Deref;

use tagbust::{Backend, BackendError, FillLease, FillOutcome, NewEntry, Op, OpOutcome};

/// What runs before each `apply` reaches the backend.
pub trait BeforeApply: Send + Sync + 'static {
    fn before_apply(&self, ops: &[Op]) -> impl Future<Output = ()> + Send;
}

/// `inner` with `hook` run before each `apply`; derefs to the hook, so a test reads its
/// state (`host.backend().calls()`) directly.
pub struct Hooked<B, H> {
    pub inner: B,
    pub hook: H,
}

impl<B, H> Hooked<B, H> {
    pub fn new(inner: B, hook: H) -> Hooked<B, H> {
        Hooked { inner, hook }
    }
}

impl<B, H> Deref for Hooked<B, H> {
    type Target = H;

    fn deref(&self) -> &H {
        &self.hook
    }
}

impl<B: Backend, H: BeforeApply> Backend for Hooked<B, H> {
    async fn apply(&self, ops: &[Op]) -> Result<Vec<OpOutcome>, BackendError> {
        self.hook.before_apply(ops).await;
        self.inner.apply(ops).await
    }

    async fn set(&self, entry: NewEntry) -> Result<(), BackendError> {
        self.inner.set(entry).await
    }

    async fn set_many(&self, entries: Vec<NewEntry>) -> Result<(), BackendError> {
        self.inner.set_many(entries).await
    }

    async fn get(&self, tenant: &str, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        self.inner.get(tenant, key).await
    }

    async fn begin_fill(
        &self,
        tenant: &str,
        key: &str,
        tags: &[String],
    ) -> Result<FillLease, BackendError> {
        self.inner.begin_fill(tenant, key, tags).await
    }

    async fn complete_fill(
        &self,
        lease: FillLease,
        entry: NewEntry,
    ) -> Result<FillOutcome, BackendError> {
        self.inner.complete_fill(lease, entry).await
    }

    async fn sweep(&self, budget: usize) -> Result<usize, BackendError> {
        self.inner.sweep(budget).await
    }
}
