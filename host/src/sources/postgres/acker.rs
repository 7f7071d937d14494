//! The low-water mark of applied commits: every committed transaction submitted to the host
//! waits here, in commit order, for its invalidations to be applied; the slot's confirmed
//! position advances to the end of the last commit before which everything is applied. A
//! later commit applied first (an immediate invalidation overtaking a batched one) does not
//! move it: a crash then redelivers both, never skips the earlier one.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;

use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;

use crate::pipeline::{Applied, NotApplied};

type Waiting = Pin<Box<dyn Future<Output = (u64, Result<(), NotApplied>)> + Send + Sync>>;

/// Submitted commits not yet applied, oldest first.
#[derive(Default)]
pub struct Acks {
    queue: FuturesOrdered<Waiting>,
    /// Commit times (µs since the Unix epoch) of the queued commits, oldest first.
    times: VecDeque<u64>,
    /// End LSN of the last commit before which everything is applied.
    confirmed: u64,
    /// The host stopped with a commit unapplied: nothing later is confirmed in this process.
    stopped: bool,
}

impl Acks {
    pub fn new(confirmed: u64) -> Acks {
        Acks {
            confirmed,
            ..Acks::default()
        }
    }

    /// Queues a commit ending at `end`; `applied` is `None` when it produced no event.
    pub fn push(&mut self, end: u64, commit_us: u64, applied: Option<Applied>) {
        let waiting: Waiting = match applied {
            Some(applied) => Box::pin(async move { (end, applied.await) }),
            None => Box::pin(std::future::ready((end, Ok(())))),
        };
        self.queue.push_back(waiting);
        self.times.push_back(commit_us);
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Commit time of the oldest commit not yet applied.
    pub fn oldest(&self) -> Option<u64> {
        self.times.front().copied()
    }

    pub fn confirmed(&self) -> u64 {
        self.confirmed
    }

    /// Waits for the oldest commit; `Some(Ok(end))` when it advanced the mark,
    /// `Some(Err(_))` when it was never applied, `None` when nothing is queued.
    pub async fn next(&mut self) -> Option<Result<u64, NotApplied>> {
        let (end, result) = self.queue.next().await?;
        self.times.pop_front();
        Some(self.settle(end, result))
    }

    fn settle(&mut self, end: u64, result: Result<(), NotApplied>) -> Result<u64, NotApplied> {
        result?;
        if !self.stopped {
            self.confirmed = self.confirmed.max(end);
        }
        Ok(self.confirmed)
    }

    /// Marks the mark as stuck (after a [`NotApplied`]).
    pub fn stop(&mut self) {
        self.stopped = true;
    }

    /// Nothing is in flight: the server's position `wal_end` (a keepalive) is safe to
    /// confirm, so an idle or unrelated-only database does not keep WAL for this slot.
    pub fn idle_to(&mut self, wal_end: u64) -> bool {
        if self.queue.is_empty() && !self.stopped && wal_end > self.confirmed {
            self.confirmed = wal_end;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;

    #[tokio::test]
    async fn the_mark_waits_for_the_oldest_commit() {
        let mut acks = Acks::new(10);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let slow: Waiting = Box::pin(async move {
            let _ = rx.await;
            (20, Ok(()))
        });
        acks.queue.push_back(slow);
        acks.times.push_back(1);
        acks.push(30, 2, None);
        assert!(
            acks.next().now_or_never().is_none(),
            "the later commit must not pass"
        );
        assert!(!acks.idle_to(99), "not idle while commits are in flight");
        let _ = tx.send(());
        assert_eq!(acks.next().await, Some(Ok(20)));
        assert_eq!(acks.next().await, Some(Ok(30)));
        assert!(acks.idle_to(99));
        assert_eq!(acks.confirmed(), 99);
    }

    #[tokio::test]
    async fn nothing_moves_after_a_commit_is_not_applied() {
        let mut acks = Acks::new(5);
        let lost: Waiting = Box::pin(std::future::ready((7, Err(NotApplied { outstanding: 1 }))));
        acks.queue.push_back(lost);
        acks.times.push_back(1);
        assert!(matches!(acks.next().await, Some(Err(_))));
        acks.stop();
        acks.push(9, 2, None);
        assert_eq!(acks.next().await, Some(Ok(5)));
        assert!(!acks.idle_to(50));
    }
}
