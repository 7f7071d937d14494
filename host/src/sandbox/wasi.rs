//! WASI for rules: linked (Rust's standard library imports it), granting nothing, and never
//! waiting past the call's deadline.
//!
//! Epoch interruption stops a rule only while its wasm code runs. A rule parked inside a host
//! call is not interrupted, and wasmtime-wasi's `wasi:io/poll` (`poll`, `pollable.block`)
//! waits as long as the pollable says: a rule calling `std::thread::sleep` or polling a clock
//! an hour away would hold a host thread that long. So the waiting functions are shadowed
//! here with bounded ones, and clock subscriptions become pollables this module can judge
//! without tokio:
//!
//! - `wasi:clocks/monotonic-clock.subscribe-duration` / `subscribe-instant`: a [`Wake`]
//!   pollable, ready at its instant.
//! - `wasi:io/poll.poll` and `pollable.block`: return at once when something is ready;
//!   otherwise sleep in steps of at most one epoch tick and re-check, until something is
//!   ready or the call's deadline passes, which traps as `Trap::Interrupt` (reported as the
//!   rule's `timeout`, exactly as an interrupted loop).
//!
//! Every other pollable a rule can reach is ready at once in this configuration (stdin is
//! closed, stdout discards, stderr is a bounded memory pipe, no sockets, no files), and
//! every other WASI function returns without waiting; ARCHITECTURE.md has the table.

use std::time::{Duration, Instant};

use futures_util::FutureExt;
use wasmtime::component::{Linker, Resource};
use wasmtime::{StoreContextMut, Trap};
use wasmtime_wasi::p2::{DynPollable, Pollable, subscribe};
use wasmtime_wasi_io::bindings::wasi::io::poll::HostPollable;

use super::limits::EPOCH_TICK;
use super::store::StoreState;

/// The WASI 0.2 release wasmtime-wasi defines; rules built against any 0.2.x resolve to it.
const POLL: &str = "wasi:io/poll@0.2.12";
const MONOTONIC_CLOCK: &str = "wasi:clocks/monotonic-clock@0.2.12";

/// Links WASI (nothing granted) and shadows every function that could wait.
pub(crate) fn link(linker: &mut Linker<StoreState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_sync(linker)?;
    linker.allow_shadowing(true);
    let mut clock = linker.instance(MONOTONIC_CLOCK)?;
    // The rule's clock counts from its store's creation, so `subscribe-instant` can be
    // judged against the same origin.
    clock.func_wrap("now", |store: StoreContextMut<'_, StoreState>, (): ()| {
        let since = store.data().created.elapsed();
        Ok((u64::try_from(since.as_nanos()).unwrap_or(u64::MAX),))
    })?;
    clock.func_wrap(
        "subscribe-duration",
        |mut store: StoreContextMut<'_, StoreState>, (nanos,): (u64,)| {
            let at = Instant::now().checked_add(Duration::from_nanos(nanos));
            Ok((wake(store.data_mut(), at)?,))
        },
    )?;
    clock.func_wrap(
        "subscribe-instant",
        |mut store: StoreContextMut<'_, StoreState>, (when,): (u64,)| {
            let at = store.data().created.checked_add(Duration::from_nanos(when));
            Ok((wake(store.data_mut(), at)?,))
        },
    )?;
    let mut poll = linker.instance(POLL)?;
    poll.func_wrap(
        "poll",
        |mut store: StoreContextMut<'_, StoreState>,
         (pollables,): (Vec<Resource<DynPollable>>,)| {
            let state = store.data_mut();
            let ready = wait_until(state, |table| {
                let mut ready = Vec::new();
                for (i, p) in pollables.iter().enumerate() {
                    if is_ready(table, p)? {
                        ready.push(u32::try_from(i).unwrap_or(u32::MAX));
                    }
                }
                Ok((!ready.is_empty()).then_some(ready))
            })?;
            Ok((ready,))
        },
    )?;
    poll.func_wrap(
        "[method]pollable.block",
        |mut store: StoreContextMut<'_, StoreState>, (pollable,): (Resource<DynPollable>,)| {
            let state = store.data_mut();
            wait_until(state, |table| Ok(is_ready(table, &pollable)?.then_some(())))?;
            Ok(())
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// A clock subscription: ready once its instant has passed (`None`: never).
struct Wake {
    at: Option<Instant>,
}

#[wasmtime_wasi::async_trait]
impl Pollable for Wake {
    async fn ready(&mut self) {
        match self.at {
            Some(at) if Instant::now() >= at => {}
            // Only this module's `poll` and `block` look at a `Wake`, and they re-check it
            // each step instead of waiting on a waker.
            _ => std::future::pending().await,
        }
    }
}

fn wake(state: &mut StoreState, at: Option<Instant>) -> wasmtime::Result<Resource<DynPollable>> {
    let table = state.table();
    let wake = table.push(Wake { at })?;
    subscribe(table, wake)
}

/// True when `pollable` is ready now, without waiting.
fn is_ready(
    table: &mut wasmtime::component::ResourceTable,
    pollable: &Resource<DynPollable>,
) -> wasmtime::Result<bool> {
    let borrowed = Resource::<DynPollable>::new_borrow(pollable.rep());
    // wasmtime-wasi-io's `ready` polls the pollable's future once and never waits.
    match HostPollable::ready(table, borrowed).now_or_never() {
        Some(ready) => ready,
        None => Ok(false),
    }
}

/// Calls `check` until it returns something or the call's deadline passes (a trap, as an
/// interrupted loop would be). Sleeps at most one epoch tick between checks.
fn wait_until<R>(
    state: &mut StoreState,
    mut check: impl FnMut(&mut wasmtime::component::ResourceTable) -> wasmtime::Result<Option<R>>,
) -> wasmtime::Result<R> {
    let deadline = state.deadline;
    loop {
        if let Some(r) = check(state.table())? {
            return Ok(r);
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(Trap::Interrupt.into());
        }
        std::thread::sleep((deadline - now).min(EPOCH_TICK));
    }
}
