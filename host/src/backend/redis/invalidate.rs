//! Sending invalidations: batches as pipelines of script calls, patterns as cost-guarded
//! scans, and retries with backoff on connection errors.

use redis::Value;
use redis::aio::ConnectionManager;

use super::{OPS_PER_CALL, RedisBackend, now_ms};
use crate::backend::{BackendError, MAX_LISTED_KEYS, Op, OpKind, OpOutcome};

impl RedisBackend {
    pub(super) async fn invalidate(
        &self,
        conn: &mut ConnectionManager,
        prefix: &str,
        kind: &str,
        value: &str,
    ) -> Result<OpOutcome, BackendError> {
        let reply: Vec<Vec<Value>> = self
            .scripts
            .invalidate
            .key(format!("{prefix}epoch"))
            .arg(prefix)
            .arg(now_ms())
            .arg(self.lease_ttl_ms())
            .arg(self.options.max_cascade_keys)
            .arg(kind)
            .arg(value)
            .invoke_async(conn)
            .await
            .map_err(|e| self.error(e))?;
        Ok(reply.into_iter().next().map(outcome).unwrap_or_default())
    }

    /// One pipeline of invalidation script calls for tag, key and version operations, up to
    /// [`OPS_PER_CALL`] consecutive operations of one tenant per call.
    pub(super) async fn pipeline(
        &self,
        conn: &mut ConnectionManager,
        run: &[Op],
    ) -> Result<Vec<OpOutcome>, BackendError> {
        let now = now_ms();
        let mut pipe = redis::pipe();
        let mut start = 0;
        while start < run.len() {
            let tenant = &run[start].tenant;
            let len = run[start..]
                .iter()
                .take(OPS_PER_CALL)
                .take_while(|o| &o.tenant == tenant)
                .count();
            let prefix = self.prefix(tenant);
            let cmd = pipe
                .cmd("EVALSHA")
                .arg(self.scripts.invalidate.get_hash())
                .arg(1)
                .arg(format!("{prefix}epoch"))
                .arg(&prefix)
                .arg(now)
                .arg(self.lease_ttl_ms())
                .arg(self.options.max_cascade_keys);
            for op in &run[start..start + len] {
                let kind = match op.kind {
                    OpKind::Tag => "tag",
                    OpKind::Key => "key",
                    _ => "version",
                };
                cmd.arg(kind).arg(&op.value);
            }
            start += len;
        }
        let replies: Vec<Vec<Vec<Value>>> = match pipe.query_async(conn).await {
            Ok(replies) => replies,
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                // Redis lost its script cache (a restart): load and send again.
                self.scripts
                    .invalidate
                    .prepare_invoke()
                    .load_async(conn)
                    .await
                    .map_err(|e| self.error(e))?;
                pipe.query_async(conn).await.map_err(|e| self.error(e))?
            }
            Err(e) => return Err(self.error(e)),
        };
        Ok(replies.into_iter().flatten().map(outcome).collect())
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
        conn: &mut ConnectionManager,
        prefix: &str,
        pattern: &str,
        out: &mut OpOutcome,
    ) -> Result<Vec<String>, BackendError> {
        let entry_prefix = format!("{prefix}e:");
        let matcher = format!("{entry_prefix}{pattern}");
        let mut cursor: u64 = 0;
        let mut keys = Vec::new();
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&matcher)
                .arg("COUNT")
                .arg(self.options.scan_count)
                .query_async(conn)
                .await
                .map_err(|e| self.error(e))?;
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
        conn: &mut ConnectionManager,
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
        self.invalidate(conn, &prefix, "epoch", "").await?;
        for key in self.scan(conn, &prefix, pattern, &mut out).await? {
            let one = self.invalidate(conn, &prefix, "key", &key).await?;
            out.removed += one.removed;
            let room = MAX_LISTED_KEYS.saturating_sub(out.keys.len());
            out.keys.extend(one.keys.into_iter().take(room));
        }
        Ok(out)
    }
}

/// Reads `invalidate.lua`'s reply: `{removed, keys...}`.
fn outcome(reply: Vec<Value>) -> OpOutcome {
    let mut out = OpOutcome::default();
    let mut items = reply.into_iter();
    if let Some(Value::Int(n)) = items.next() {
        out.removed = u64::try_from(n).unwrap_or(0);
    }
    out.keys = items
        .filter_map(|v| redis::from_redis_value::<String>(v).ok())
        .take(MAX_LISTED_KEYS)
        .collect();
    out
}
