//! Handing a run of decoded entries to the host, and what each refusal means for them: an
//! invalid event or an unknown tenant is its entry's dead letter (the rest go on); a rate
//! limit or backpressure is a wait and another try, never a dead letter; shutdown stops.
//! Also `commit`/`rollback` entries, and filing dead letters.

use crate::backend::Backend;
use crate::model::{WriteEvent, parse_events};
use crate::pipeline::HostError;

use super::consumer::{Consumer, Flow};
use super::entry::Parsed;
use super::link;
use super::stats::{DeadLetterReason, RetryReason, StreamStats};

impl<B: Backend> Consumer<B> {
    /// Submits `group` in stream order, as few tracked submissions as the host takes, and
    /// hands their entries to the acknowledger. An entry the host refuses for its own fault
    /// becomes a dead letter and the rest are tried again; after a rate limit or
    /// backpressure the consumer waits and tries again with half as many entries (a run
    /// bigger than a tenant's whole budget would never pass).
    pub(crate) async fn submit(&mut self, mut group: Vec<Parsed>) -> Flow {
        let mut size = group.len();
        while !group.is_empty() {
            let rest = group.split_off(size.min(group.len()));
            match self.try_submit(&mut group).await {
                Tried::Done => group = rest,
                Tried::Again { shrink } => {
                    if shrink {
                        size = (size / 2).max(1);
                    }
                    group.extend(rest);
                }
                Tried::Stop => return Flow::Stop,
            }
        }
        Flow::Go
    }

    async fn try_submit(&mut self, group: &mut Vec<Parsed>) -> Tried {
        if group.is_empty() {
            return Tried::Done;
        }
        let Some(permit) = self.acker.room(group.len(), &self.shutdown).await else {
            return Tried::Stop;
        };
        let events: Vec<WriteEvent> = group
            .iter_mut()
            .flat_map(|p| std::mem::take(&mut p.events))
            .collect();
        let n = events.len() as u64;
        let refused = match self.host.submit_tracked(events).await {
            Ok((report, applied)) => {
                StreamStats::add(&self.stats.submissions, 1);
                StreamStats::add(&self.stats.events_submitted, n);
                if !report.rejected.is_empty() {
                    let rejected = report.rejected.len() as u64;
                    StreamStats::add(&self.stats.events_rejected_by_rules, rejected);
                    for r in &report.rejected {
                        tracing::warn!(stream = %self.cfg.stream, "{r}: not applied");
                    }
                }
                if let [one] = group.as_slice()
                    && let Some((tenant, tx)) = &one.commit
                    // Refused only during shutdown, which applies open transactions itself
                    // (and so resolves this entry's acknowledgement).
                    && self.host.commit(tenant, tx).await.is_ok()
                {
                    StreamStats::add(&self.stats.commits, 1);
                }
                self.wait = self.cfg.backoff;
                let ids = group.drain(..).map(|p| p.id).collect();
                self.acker.track(ids, applied, permit);
                StreamStats::set(&self.stats.in_flight, self.acker.in_flight.len() as u64);
                return Tried::Done;
            }
            Err(e) => e,
        };
        drop(permit);
        if self.restore(group).await == Flow::Stop {
            return Tried::Stop;
        }
        let flow = match refused {
            HostError::ShutDown => Flow::Stop,
            HostError::InvalidEvent {
                index,
                field,
                message,
            } => {
                let Some((p, local)) = take_event(group, index) else {
                    return Tried::Done;
                };
                let error = format!("{}: event {local}: field `{field}`: {message}", p.label);
                self.bury_parsed(p, DeadLetterReason::Field, &error).await
            }
            HostError::UnknownTenant { index, tenant } => {
                let Some((p, local)) = take_event(group, index) else {
                    return Tried::Done;
                };
                let error = format!(
                    "{}: event {local}: unknown tenant `{tenant}` (no rules are loaded for it)",
                    p.label
                );
                self.bury_parsed(p, DeadLetterReason::UnknownTenant, &error)
                    .await
            }
            e if e.is_retryable() => {
                let reason = match e {
                    HostError::RateLimited { .. } => RetryReason::RateLimited,
                    HostError::Backpressure { .. } => RetryReason::Backpressure,
                    _ => RetryReason::Other,
                };
                StreamStats::add(&self.stats.retries[reason as usize], 1);
                tracing::debug!(stream = %self.cfg.stream, "{e}; trying again in {:?}", self.wait);
                return match self.pause().await {
                    Flow::Go => Tried::Again { shrink: true },
                    Flow::Stop => Tried::Stop,
                };
            }
            e => {
                // Not the entries' fault, and not known to pass: leave them pending; a
                // claimer delivers them again after `claim_idle` (and files them as dead
                // letters past `max_deliveries`).
                tracing::error!(
                    stream = %self.cfg.stream, group = %self.cfg.group,
                    entries = ?group.iter().map(|p| &p.id).collect::<Vec<_>>(),
                    "the host refused entries: {e}; they stay pending"
                );
                StreamStats::add(&self.stats.entries_left_pending, group.len() as u64);
                group.clear();
                return Tried::Done;
            }
        };
        match flow {
            Flow::Go => Tried::Again { shrink: false },
            Flow::Stop => Tried::Stop,
        }
    }

    /// `commit` / `rollback` of `tenant/tx`; the entry is acknowledged at once (its
    /// transaction's entries are acknowledged when what they held is applied).
    pub(crate) async fn close(&mut self, id: String, commit: bool, tenant: &str, tx: &str) -> Flow {
        let Some(permit) = self.acker.room(1, &self.shutdown).await else {
            return Flow::Stop;
        };
        if commit {
            // Refused only once the host is shutting down: the entry stays pending for the
            // next reader (shutdown applies open transactions itself).
            let Ok(report) = self.host.commit(tenant, tx).await else {
                return Flow::Stop;
            };
            StreamStats::add(&self.stats.commits, 1);
            tracing::debug!(stream = %self.cfg.stream, entry = %id, tenant, tx, released = report.released, "commit");
        } else {
            let released = self.host.rollback(tenant, tx);
            StreamStats::add(&self.stats.rollbacks, 1);
            tracing::debug!(stream = %self.cfg.stream, entry = %id, tenant, tx, released, "rollback");
        }
        self.acker.ack_now(vec![id], permit);
        Flow::Go
    }

    pub(crate) async fn ack_now(&mut self, id: String) -> Flow {
        match self.acker.room(1, &self.shutdown).await {
            Some(permit) => {
                self.acker.ack_now(vec![id], permit);
                Flow::Go
            }
            None => Flow::Stop,
        }
    }

    /// Files a dead letter and acknowledges the entry; retries while Redis is down.
    pub(crate) async fn bury(
        &mut self,
        id: &str,
        reason: DeadLetterReason,
        error: &str,
        deliveries: u64,
        payload: Vec<u8>,
        payload_bytes: usize,
    ) -> Flow {
        tracing::warn!(
            stream = %self.cfg.stream, group = %self.cfg.group, entry = id,
            reason = reason.as_str(), "dead letter: {error}"
        );
        let letter = link::DeadLetter {
            id,
            reason: reason.as_str(),
            error,
            deliveries,
            payload,
            payload_bytes,
        };
        loop {
            let cfg = &self.cfg;
            match self
                .control
                .run(async |c| link::dead_letter(c, cfg, &letter).await)
                .await
            {
                Ok(()) => {
                    StreamStats::add(&self.stats.dead_letters[reason as usize], 1);
                    return Flow::Go;
                }
                Err(e) => {
                    self.redis_error("dead letter", &e);
                    if self.pause().await == Flow::Stop {
                        return Flow::Stop;
                    }
                }
            }
        }
    }

    /// Puts back the events a refused submission took, decoding them again.
    async fn restore(&mut self, group: &mut Vec<Parsed>) -> Flow {
        let mut i = 0;
        while i < group.len() {
            let p = &mut group[i];
            if p.events.len() == p.n_events {
                i += 1;
                continue;
            }
            match parse_events(&p.label, &p.raw, &self.limits) {
                Ok(events) => {
                    p.events = events;
                    i += 1;
                }
                Err(e) => {
                    // Decoded once already; only a changed host limit can get here.
                    let p = group.remove(i);
                    let error = e.to_string();
                    if self.bury_parsed(p, DeadLetterReason::Json, &error).await == Flow::Stop {
                        return Flow::Stop;
                    }
                }
            }
        }
        Flow::Go
    }

    async fn bury_parsed(&mut self, p: Parsed, reason: DeadLetterReason, error: &str) -> Flow {
        let size = p.raw.len();
        let mut payload = p.raw;
        payload.truncate(self.cfg.dead_letter_payload_bytes);
        self.bury(&p.id, reason, error, 1, payload, size).await
    }
}

/// What became of one try.
enum Tried {
    /// Submitted, or left pending: the head is done.
    Done,
    /// Try the head again (`shrink`: with fewer entries).
    Again {
        shrink: bool,
    },
    Stop,
}

/// Removes the entry holding the submission's event `index`; returns it and the event's
/// index within the entry (`None` for an index past the end, which the host never gives).
fn take_event(group: &mut Vec<Parsed>, index: usize) -> Option<(Parsed, usize)> {
    let mut first = 0;
    let k = group.iter().position(|p| {
        if index < first + p.n_events {
            return true;
        }
        first += p.n_events;
        false
    })?;
    Some((group.remove(k), index - first))
}
