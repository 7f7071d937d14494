//! Group commit of single `set`s: writes that arrive while another is in flight wait in a
//! queue and go out together as one `set_many`, so concurrent callers of `Cache::set` share
//! script calls instead of paying one each.
//!
//! No task of its own: the caller whose write finds no round in flight leads. It sends the
//! queue's head (up to [`GROUP`] entries, its own first), hands each waiter its result, and
//! passes the lead to the next waiter still queued, handing it its own entry back
//! ([`Signal::Lead`]). A lone `set` therefore goes out at once, as before. A leader whose
//! future is dropped mid-round puts its batch back at the queue's head and passes the lead
//! on ([`Round`]'s drop): no waiter is left without a leader. Sending a write again whose
//! first sending may have landed only stores it again.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::oneshot;

use super::RedisBackend;
use crate::backend::{BackendError, NewEntry};

/// Entries one round sends at most (cut into script calls by `store_many`).
const GROUP: usize = 1024;

/// What a waiting writer is told.
enum Signal {
    /// Its write went out with a round: the round's result.
    Done(Result<(), BackendError>),
    /// It leads the next round; here is its entry back.
    Lead(NewEntry),
}

struct Waiting {
    entry: NewEntry,
    tell: oneshot::Sender<Signal>,
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<Waiting>,
    /// A round is in flight, or its lead is being passed on: a new write waits.
    leading: bool,
}

/// The queue of single writes waiting for a round.
#[derive(Default)]
pub(super) struct Writes {
    queue: Mutex<Queue>,
}

impl Writes {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Passes the lead to the first waiter whose caller still waits; a waiter whose caller
    /// is gone is dropped with its write (a cancelled `set` may or may not happen). With
    /// nobody waiting, the next `set` leads.
    fn pass_lead(&self) {
        let mut queue = self.lock();
        while let Some(next) = queue.waiting.pop_front() {
            match next.tell.send(Signal::Lead(next.entry)) {
                Ok(()) => return,
                Err(_) => continue,
            }
        }
        queue.leading = false;
    }
}

/// A round in flight: the waiters whose entries it carries. Dropped before it completes
/// (the leader's future cancelled), it requeues them at the head and passes the lead on.
struct Round<'a> {
    writes: &'a Writes,
    carried: Vec<oneshot::Sender<Signal>>,
    entries: Vec<NewEntry>,
    finished: bool,
}

impl Drop for Round<'_> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        {
            let mut queue = self.writes.lock();
            // The leader's own entry (first) has nobody waiting on it any more: it goes.
            let entries = self.entries.drain(..).skip(1);
            for (entry, tell) in entries.zip(self.carried.drain(..)).rev() {
                queue.waiting.push_front(Waiting { entry, tell });
            }
        }
        self.writes.pass_lead();
    }
}

impl RedisBackend {
    /// Stores one entry, grouped with the single writes in flight at the same time.
    pub(super) async fn set_grouped(&self, entry: NewEntry) -> Result<(), BackendError> {
        let (tell, told) = oneshot::channel();
        let lead = {
            let mut queue = self.writes.lock();
            if queue.leading {
                queue.waiting.push_back(Waiting { entry, tell });
                None
            } else {
                queue.leading = true;
                Some(entry)
            }
        };
        let own = match lead {
            Some(entry) => entry,
            None => match told.await {
                Ok(Signal::Done(result)) => return result,
                Ok(Signal::Lead(entry)) => entry,
                // Only a round that is dropped drops its senders, and it requeues them first.
                Err(_) => {
                    return Err(BackendError::Unavailable(format!(
                        "{}: a grouped write lost its round",
                        self.url
                    )));
                }
            },
        };
        let mut round = Round {
            writes: &self.writes,
            carried: Vec::new(),
            entries: vec![own],
            finished: false,
        };
        {
            let mut queue = self.writes.lock();
            let take = queue.waiting.len().min(GROUP - 1);
            for waiting in queue.waiting.drain(..take) {
                round.entries.push(waiting.entry);
                round.carried.push(waiting.tell);
            }
        }
        let result = self.retrying(|| self.store_many(&round.entries)).await;
        round.finished = true;
        for tell in round.carried.drain(..) {
            let _ = tell.send(Signal::Done(result.clone()));
        }
        self.writes.pass_lead();
        result
    }
}
