//! Sending invalidations: batches as pipelines of script calls, patterns as cost-guarded
//! scans, and retries with backoff on connection errors.

use std::sync::atomic::Ordering;

use futures_util::future::try_join_all;
use redis::Value;

use super::conn::Conn;
use super::{OPS_PER_CALL, RedisBackend, now_ms};
use crate::backend::{BackendError, MAX_LISTED_KEYS, Op, OpKind, OpOutcome};

/// Script calls per pipeline: a run longer than this goes out as several pipelines in flight at
/// once, so the host encodes and decodes one while Redis executes another.
const CALLS_PER_PIPELINE: usize = 4;

impl RedisBackend {
    /// Bumps the tenant's epoch, voiding every fill lease of the tenant.
    async fn bump_epoch(&self, conn: &mut Conn, prefix: &str) -> Result<(), BackendError> {
        let _: Value = self
            .scripts
            .invalidate
            .key(format!("{prefix}epoch"))
            .arg(prefix)
            .arg(now_ms())
            .arg(self.lease_ttl_ms())
            .arg(self.options.max_cascade_keys)
            .arg(1)
            .arg(0)
            .arg("epoch")
            .arg("")
            .invoke_async(conn)
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// Sends tag, key and version operations: per run of one tenant (one Cluster slot), up
    /// to [`OPS_PER_CALL`] operations per script call, calls grouped into pipelines sent
    /// concurrently. A call applies what fits its budget of entries and says how far it got;
    /// the rest, and the drains of big tags, go out in the next round. The outcomes come back
    /// in `run`'s order.
    pub(super) async fn pipeline(
        &self,
        conn: &mut Conn,
        run: &[Op],
    ) -> Result<Vec<OpOutcome>, BackendError> {
        let mut groups: Vec<&[Op]> = Vec::new();
        let mut start = 0;
        while start < run.len() {
            let tenant = &run[start].tenant;
            let len = run[start..]
                .iter()
                .take_while(|o| &o.tenant == tenant)
                .count();
            groups.push(&run[start..start + len]);
            start += len;
        }
        let sends = groups
            .into_iter()
            .map(|ops| self.tenant_run(conn.clone(), ops));
        Ok(try_join_all(sends).await?.into_iter().flatten().collect())
    }

    /// Applies `ops`, all of one tenant, in rounds until every operation and drain is done.
    async fn tenant_run(&self, conn: Conn, ops: &[Op]) -> Result<Vec<OpOutcome>, BackendError> {
        let Some(first) = ops.first() else {
            return Ok(Vec::new());
        };
        let prefix = self.prefix(&first.tenant);
        let mut outcomes = vec![OpOutcome::default(); ops.len()];
        let mut work: Vec<Work> = ops
            .iter()
            .enumerate()
            .map(|(at, op)| Work {
                at,
                kind: match op.kind {
                    OpKind::Tag => "tag",
                    OpKind::Key => "key",
                    _ => "version",
                },
                value: op.value.clone(),
            })
            .collect();
        while !work.is_empty() {
            let now = now_ms();
            let calls = self.cut(&work);
            // Encoded when first polled and sent at once: Redis runs one pipeline while the
            // host encodes the next.
            let sends = calls.chunks(CALLS_PER_PIPELINE).map(|group| {
                let conn = conn.clone();
                let prefix = &prefix;
                async move {
                    let mut pipe = redis::pipe();
                    for call in group {
                        self.call(&mut pipe, prefix, call, now);
                    }
                    self.retrying(|| {
                        let mut conn = conn.clone();
                        let pipe = &pipe;
                        async move {
                            self.send_script(&mut conn, pipe, &self.scripts.invalidate)
                                .await
                        }
                    })
                    .await
                }
            });
            let replies = try_join_all(sends).await?.into_iter().flatten();
            let mut next = Vec::new();
            for (reply, call) in replies.zip(&calls) {
                let applied = read_call(reply, call, ops, &mut outcomes, &mut next)?;
                if applied == 0 {
                    return Err(BackendError::Refused(
                        "invalidate.lua applied nothing of a call".into(),
                    ));
                }
                next.extend(call[applied..].iter().cloned());
            }
            next.sort_by_key(|w| w.at);
            self.learn(&work, &next, ops, &outcomes);
            work = next;
        }
        for (op, outcome) in ops.iter().zip(&mut outcomes) {
            if op.kind == OpKind::Key && outcome.removed > 0 && outcome.keys.is_empty() {
                outcome.keys.push(op.value.clone());
            }
        }
        Ok(outcomes)
    }

    /// Cuts `work` into calls whose expected entries fit `entries_per_call`: a key or
    /// version weighs 1, a tag what tags have held on average lately, a drain the whole
    /// budget; at most [`OPS_PER_CALL`] operations per call. A call that finds more than it
    /// expected applies what fits and leaves the rest for the next round.
    fn cut<'w>(&self, work: &'w [Work]) -> Vec<&'w [Work]> {
        let budget = self.options.entries_per_call.max(1) as u64;
        let tag = self.tag_weight.load(Ordering::Relaxed).clamp(1, budget);
        let mut calls = Vec::new();
        let (mut start, mut used) = (0, 0);
        for (i, w) in work.iter().enumerate() {
            let weight = match w.kind {
                "tag" => tag,
                "drain" => budget,
                _ => 1,
            };
            if i > start && (used + weight > budget || i - start == OPS_PER_CALL) {
                calls.push(&work[start..i]);
                (start, used) = (i, 0);
            }
            used += weight;
        }
        if start < work.len() {
            calls.push(&work[start..]);
        }
        calls
    }

    /// Updates the average entries per tag (a moving average, 1/4 per round) from the tags
    /// this round finished.
    fn learn(&self, sent: &[Work], left: &[Work], ops: &[Op], outcomes: &[OpOutcome]) {
        let pending: std::collections::HashSet<usize> = left.iter().map(|w| w.at).collect();
        let (mut sum, mut n) = (0u64, 0u64);
        for w in sent
            .iter()
            .filter(|w| w.kind == "tag" && !pending.contains(&w.at))
        {
            if ops.get(w.at).is_some_and(|op| op.kind == OpKind::Tag) {
                sum += outcomes.get(w.at).map_or(0, |o| o.removed);
                n += 1;
            }
        }
        if let Some(seen) = sum.checked_div(n) {
            let seen = seen.max(1);
            let old = self.tag_weight.load(Ordering::Relaxed);
            self.tag_weight
                .store((old * 3 + seen).div_ceil(4), Ordering::Relaxed);
        }
    }

    /// One `invalidate.lua` call for `work` (all of the tenant of `prefix`).
    fn call(&self, pipe: &mut redis::Pipeline, prefix: &str, work: &[Work], now: u64) {
        let cmd = pipe
            .cmd("EVALSHA")
            .arg(self.scripts.invalidate.get_hash())
            .arg(1)
            .arg(format!("{prefix}epoch"))
            .arg(prefix)
            .arg(now)
            .arg(self.lease_ttl_ms())
            .arg(self.options.max_cascade_keys)
            .arg(self.options.entries_per_call.max(1))
            .arg(self.options.listed_keys.min(MAX_LISTED_KEYS));
        for w in work {
            cmd.arg(w.kind).arg(&w.value);
        }
    }

    /// Sends a pipeline of calls of `script`; one reply per call.
    pub(super) async fn send_script(
        &self,
        conn: &mut Conn,
        pipe: &redis::Pipeline,
        script: &redis::Script,
    ) -> Result<Vec<Value>, BackendError> {
        match pipe.query_async(conn).await {
            Ok(replies) => Ok(replies),
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                // Redis lost its script cache (a restart): load and send again.
                script
                    .prepare_invoke()
                    .load_async(conn)
                    .await
                    .map_err(|e| self.error(e))?;
                pipe.query_async(conn).await.map_err(|e| self.error(e))
            }
            Err(e) => Err(self.error(e)),
        }
    }

    /// Runs `attempt` until it succeeds, retrying connection errors with doubling backoff.
    pub(super) async fn retrying<T, F, Fut>(&self, mut attempt: F) -> Result<T, BackendError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, BackendError>>,
    {
        let mut wait = self.options.backoff;
        let mut tries = 1;
        loop {
            match attempt().await {
                Err(BackendError::Unavailable(message)) if tries < self.options.attempts => {
                    tracing::warn!(url = %self.url, tries, error = %message, "redis call failed; retrying");
                    self.retried
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                    tries += 1;
                }
                other => return other,
            }
        }
    }

    /// Keys of `prefix` matching `pattern` (after the entry prefix), within the cost guard.
    pub(super) async fn scan(
        &self,
        conn: &mut Conn,
        prefix: &str,
        pattern: &str,
        out: &mut OpOutcome,
    ) -> Result<Vec<String>, BackendError> {
        let entry_prefix = format!("{prefix}e:");
        let matcher = format!("{entry_prefix}{pattern}");
        let mut cursor: u64 = 0;
        let mut keys = Vec::new();
        loop {
            let mut scan = redis::cmd("SCAN");
            scan.arg(cursor)
                .arg("MATCH")
                .arg(&matcher)
                .arg("COUNT")
                .arg(self.options.scan_count);
            // A tenant's keys all live on the primary owning its slot.
            let reply = conn
                .on_slot_of(&entry_prefix, scan)
                .await
                .map_err(|e| self.error(e))?;
            let (next, batch): (u64, Vec<String>) =
                redis::from_redis_value(reply).map_err(|e| self.error(e.into()))?;
            out.scanned += self.options.scan_count;
            keys.extend(
                batch
                    .into_iter()
                    .filter_map(|k| k.strip_prefix(&entry_prefix).map(str::to_owned)),
            );
            cursor = next;
            if cursor == 0 {
                break;
            }
            if out.scanned >= self.options.max_scan_keys {
                out.refused = Some(format!(
                    "stopped after scanning {} keys (cost guard); the rest of the pattern was not applied",
                    out.scanned
                ));
                break;
            }
        }
        Ok(keys)
    }

    pub(super) async fn apply_pattern(
        &self,
        conn: &mut Conn,
        op: &Op,
    ) -> Result<OpOutcome, BackendError> {
        let prefix = self.prefix(&op.tenant);
        let mut out = OpOutcome::default();
        let pattern = if op.kind == OpKind::Tenant {
            "*"
        } else {
            op.value.as_str()
        };
        if op.kind == OpKind::Pattern
            && pattern.chars().all(|c| c == '*')
            && !self.options.allow_match_all
        {
            out.refused = Some(format!(
                "pattern `{pattern}` matches every key; refused (allow_match_all is off)"
            ));
            return Ok(out);
        }
        // Void the tenant's fill leases first, so no fill racing the scan can store.
        self.bump_epoch(conn, &prefix).await?;
        let keys: Vec<Op> = self
            .scan(conn, &prefix, pattern, &mut out)
            .await?
            .into_iter()
            .map(|value| Op {
                tenant: op.tenant.clone(),
                kind: OpKind::Key,
                value,
            })
            .collect();
        for one in self.pipeline(conn, &keys).await? {
            out.removed += one.removed;
            let room = MAX_LISTED_KEYS.saturating_sub(out.keys.len());
            out.keys.extend(one.keys.into_iter().take(room));
        }
        Ok(out)
    }
}

/// One invalidation still to send: its operation's index, the script's kind and value.
#[derive(Clone)]
struct Work {
    at: usize,
    kind: &'static str,
    value: String,
}

/// Reads one call's flat reply (see invalidate.lua): how many of `call` it applied, then per
/// applied item removed, drain version (0: none), how many keys are listed, the keys. Adds
/// to `outcomes`; a drain still to do goes to `next`. Returns how many it applied.
fn read_call(
    reply: Value,
    call: &[Work],
    ops: &[Op],
    outcomes: &mut [OpOutcome],
    next: &mut Vec<Work>,
) -> Result<usize, BackendError> {
    let malformed = || BackendError::Refused("invalidate.lua: malformed reply".into());
    let Value::Array(items) = reply else {
        return Err(malformed());
    };
    let mut items = items.into_iter();
    let int = |items: &mut std::vec::IntoIter<Value>| match items.next() {
        Some(Value::Int(n)) => Ok(u64::try_from(n).unwrap_or(0)),
        _ => Err(malformed()),
    };
    let applied = usize::try_from(int(&mut items)?)
        .unwrap_or(usize::MAX)
        .min(call.len());
    for w in &call[..applied] {
        let (removed, drain, listed) = (int(&mut items)?, int(&mut items)?, int(&mut items)?);
        let outcome = outcomes.get_mut(w.at).ok_or_else(malformed)?;
        outcome.removed += removed;
        for _ in 0..listed {
            let key: String = items
                .next()
                .and_then(|v| redis::from_redis_value(v).ok())
                .ok_or_else(malformed)?;
            if outcome.keys.len() < MAX_LISTED_KEYS {
                outcome.keys.push(key);
            }
        }
        if drain > 0 {
            let tag = &ops.get(w.at).ok_or_else(malformed)?.value;
            next.push(Work {
                at: w.at,
                kind: "drain",
                value: format!("{drain}:{tag}"),
            });
        }
    }
    Ok(applied)
}
