//! Where a rule call may block. Rules are CPU-bound, but WASI's synchronous streams (a guest
//! writing to stderr: every Rust panic does) `block_on` the ambient tokio runtime, which panics
//! on an async worker thread. These guards make a call safe from anywhere.

/// Runs `f` where a rule's call may block on tokio. A guest writing to stderr (every Rust
/// panic does) goes through WASI's synchronous streams, which `block_on` the ambient tokio
/// runtime: fine outside a runtime and on the blocking pool, a panic on an async worker thread.
/// So: outside a runtime, run as is; on a multi-threaded runtime, through `block_in_place`
/// (which runs as is off the workers); on a current-thread runtime, on a scoped thread of its
/// own, outside the runtime's context.
pub(crate) fn where_blocking_is_allowed<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    if MAY_BLOCK.get() {
        return f();
    }
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Err(_) => f(),
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        Ok(_) => std::thread::scope(|scope| match scope.spawn(f).join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }),
    }
}

thread_local! {
    /// Set while the host evaluates on its own blocking-pool thread, where blocking is fine
    /// whatever the runtime: the guard above then costs nothing (on a current-thread runtime
    /// it would otherwise start a thread per call).
    static MAY_BLOCK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` on a thread known to allow blocking (a `spawn_blocking` closure).
pub(crate) fn on_blocking_thread<R>(f: impl FnOnce() -> R) -> R {
    let before = MAY_BLOCK.replace(true);
    let r = f();
    MAY_BLOCK.set(before);
    r
}
