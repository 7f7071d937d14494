//! Acknowledgement after apply: a future per accepted submission that resolves once every
//! invalidation it produced has been applied to the backend — immediate ones at once,
//! batched ones after their window, transactional ones after commit (a rollback counts as
//! done: nothing was to be applied). A source that must not lose events (a stream entry, a
//! replication slot position) acknowledges upstream only when it resolves.
//!
//! Each routed operation of a tracked submission carries its submission's [`Ticket`];
//! coalescing keeps every ticket of the operations it merges, with a count. Applying an
//! operation marks its tickets done. An operation that is never applied (the host was shut
//! down on a dead backend, or dropped) drops its tickets, and a ticket dropped with work
//! outstanding resolves its future with [`NotApplied`]: the caller learns it, never waits
//! forever.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::sync::oneshot;

/// Some invalidation of a submission was never applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "{outstanding} invalidation(s) of this submission were never applied (the host stopped with them pending)"
)]
pub struct NotApplied {
    pub outstanding: u64,
}

/// Resolves when every invalidation of one submission is applied (see [`crate::Tagbust::submit_tracked`]).
#[must_use = "the acknowledgement is only known by awaiting it"]
pub struct Applied {
    rx: oneshot::Receiver<Result<(), NotApplied>>,
}

impl Future for Applied {
    type Output = Result<(), NotApplied>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(NotApplied { outstanding: 0 })))
    }
}

/// One tracked submission's outstanding work.
#[derive(Debug)]
pub(crate) struct Ticket {
    outstanding: AtomicU64,
    tx: Mutex<Option<oneshot::Sender<Result<(), NotApplied>>>>,
}

impl Ticket {
    /// A ticket holding one unit for the submission itself, released by [`Ticket::done`]
    /// once dispatch has attached every operation.
    pub fn new() -> (Arc<Ticket>, Applied) {
        let (tx, rx) = oneshot::channel();
        let ticket = Ticket {
            outstanding: AtomicU64::new(1),
            tx: Mutex::new(Some(tx)),
        };
        (Arc::new(ticket), Applied { rx })
    }

    pub fn add(&self, n: u64) {
        self.outstanding.fetch_add(n, Ordering::AcqRel);
    }

    /// `n` units are applied (or need no applying); the last one resolves the future.
    pub fn done(&self, n: u64) {
        if n > 0 && self.outstanding.fetch_sub(n, Ordering::AcqRel) == n {
            self.send(Ok(()));
        }
    }

    fn send(&self, result: Result<(), NotApplied>) {
        let tx = self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(tx) = tx {
            // The caller may have stopped waiting; that is its choice.
            let _ = tx.send(result);
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let outstanding = *self.outstanding.get_mut();
        if outstanding > 0 {
            self.send(Err(NotApplied { outstanding }));
        }
    }
}

/// The tickets of one (possibly coalesced) operation: each submission once, with how many of
/// its operations were merged into this one.
#[derive(Debug, Default)]
pub(crate) struct Tickets(Vec<(Arc<Ticket>, u64)>);

impl Tickets {
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn one(ticket: Option<Arc<Ticket>>) -> Tickets {
        Tickets(ticket.map(|t| vec![(t, 1)]).unwrap_or_default())
    }

    /// Takes `other`'s tickets; a submission already present only has its count raised.
    #[inline]
    pub fn absorb(&mut self, other: Tickets) {
        // An untracked submission's operations carry none: nothing to walk or free.
        if other.0.is_empty() {
            return;
        }
        for (ticket, n) in other.0 {
            match self
                .0
                .iter_mut()
                .rev()
                .find(|(t, _)| Arc::ptr_eq(t, &ticket))
            {
                Some((_, count)) => *count += n,
                None => self.0.push((ticket, n)),
            }
        }
    }

    /// The operation was applied: every ticket's units are done.
    pub fn applied(self) {
        for (ticket, n) in self.0 {
            ticket.done(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;

    #[test]
    fn resolves_when_the_last_unit_is_done() {
        let (t, mut applied) = Ticket::new();
        t.add(2);
        let mut a = Tickets::one(Some(t.clone()));
        a.absorb(Tickets::one(Some(t.clone())));
        assert_eq!(a.0.len(), 1, "one entry per submission");
        t.done(1); // dispatch finished attaching
        assert!((&mut applied).now_or_never().is_none(), "two units left");
        a.applied();
        assert_eq!(applied.now_or_never(), Some(Ok(())));
    }

    #[test]
    fn a_dropped_operation_reports_not_applied() {
        let (t, applied) = Ticket::new();
        t.add(1);
        let lost = Tickets::one(Some(t.clone()));
        t.done(1);
        drop(t);
        drop(lost);
        assert_eq!(
            applied.now_or_never(),
            Some(Err(NotApplied { outstanding: 1 }))
        );
    }

    #[test]
    fn a_submission_with_nothing_to_apply_resolves_at_once() {
        let (t, applied) = Ticket::new();
        t.done(1);
        assert_eq!(applied.now_or_never(), Some(Ok(())));
    }
}
