//! Sending invalidations: batches as pipelines of script calls, patterns as cost-guarded
//! scans, and retries with backoff on connection errors.

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
            .arg("epoch")
            .arg("")
            .invoke_async(conn)
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// Sends tag, key and version operations: up to [`OPS_PER_CALL`] consecutive operations
    /// of one tenant per script call, calls grouped into pipelines of one tenant each (one
    /// Cluster slot), and the pipelines sent concurrently. The outcomes come back in `run`'s
    /// order.
    pub(super) async fn pipeline(
        &self,
        conn: &mut Conn,
        run: &[Op],
    ) -> Result<Vec<OpOutcome>, BackendError> {
        let now = now_ms();
        // (start, end) of each pipeline's operations in `run`.
        let mut groups: Vec<(usize, usize)> = Vec::new();
        let mut start = 0;
        while start < run.len() {
            let tenant = &run[start].tenant;
            let len = run[start..]
                .iter()
                .take(OPS_PER_CALL * CALLS_PER_PIPELINE)
                .take_while(|o| &o.tenant == tenant)
                .count();
            groups.push((start, start + len));
            start += len;
        }
        let sends = groups.iter().map(|&(from, to)| {
            let mut conn = conn.clone();
            async move {
                let ops = &run[from..to];
                let mut pipe = redis::pipe();
                for call in ops.chunks(OPS_PER_CALL) {
                    self.call(&mut pipe, call, now);
                }
                let replies = self.send(&mut conn, &pipe).await?;
                let mut outcomes = Vec::with_capacity(ops.len());
                for (reply, call) in replies.into_iter().zip(ops.chunks(OPS_PER_CALL)) {
                    outcomes.extend(read_outcomes(reply, call)?);
                }
                Ok::<_, BackendError>(outcomes)
            }
        });
        Ok(try_join_all(sends).await?.into_iter().flatten().collect())
    }

    /// One `invalidate.lua` call for `ops` (all of one tenant).
    fn call(&self, pipe: &mut redis::Pipeline, ops: &[Op], now: u64) {
        let Some(first) = ops.first() else { return };
        let prefix = self.prefix(&first.tenant);
        let cmd = pipe
            .cmd("EVALSHA")
            .arg(self.scripts.invalidate.get_hash())
            .arg(1)
            .arg(format!("{prefix}epoch"))
            .arg(&prefix)
            .arg(now)
            .arg(self.lease_ttl_ms())
            .arg(self.options.max_cascade_keys);
        for op in ops {
            let kind = match op.kind {
                OpKind::Tag => "tag",
                OpKind::Key => "key",
                _ => "version",
            };
            cmd.arg(kind).arg(&op.value);
        }
    }

    async fn send(
        &self,
        conn: &mut Conn,
        pipe: &redis::Pipeline,
    ) -> Result<Vec<Vec<Value>>, BackendError> {
        match pipe.query_async(conn).await {
            Ok(replies) => Ok(replies),
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                // Redis lost its script cache (a restart): load and send again.
                self.scripts
                    .invalidate
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

/// Reads `invalidate.lua`'s flat reply to `ops`: per operation, removed, the number of keys
/// listed, the keys; a plain key's reply lists none (the host knows the key).
fn read_outcomes(reply: Vec<Value>, ops: &[Op]) -> Result<Vec<OpOutcome>, BackendError> {
    let malformed = || BackendError::Refused("invalidate.lua: malformed reply".into());
    let mut items = reply.into_iter();
    let int = |items: &mut std::vec::IntoIter<Value>| match items.next() {
        Some(Value::Int(n)) => Ok(u64::try_from(n).unwrap_or(0)),
        _ => Err(malformed()),
    };
    let mut out = Vec::with_capacity(ops.len());
    for op in ops {
        let mut outcome = OpOutcome {
            removed: int(&mut items)?,
            ..OpOutcome::default()
        };
        let listed = int(&mut items)?;
        for _ in 0..listed {
            let key: String = items
                .next()
                .and_then(|v| redis::from_redis_value(v).ok())
                .ok_or_else(malformed)?;
            if outcome.keys.len() < MAX_LISTED_KEYS {
                outcome.keys.push(key);
            }
        }
        if op.kind == OpKind::Key && outcome.removed > 0 && outcome.keys.is_empty() {
            outcome.keys.push(op.value.clone());
        }
        out.push(outcome);
    }
    Ok(out)
}
