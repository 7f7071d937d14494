//! The sweeper: prunes expired members from tag indexes a little at a time, walking every
//! primary in turn (a `SCAN` cursor belongs to one node).

use futures_util::future::join_all;
use redis::RedisResult;

use super::conn::Conn;
use super::{RedisBackend, now_ms};
use crate::backend::BackendError;

/// Keys one `SCAN` call of the sweeper looks at: 1,000 took 1.0-1.6 ms with 100,000 keys in
/// the Redis bench (SLOWLOG), so a quarter of that.
const SCAN_STEP: usize = 250;

/// Where the sweep stopped: which primary, and the `SCAN` cursor on it.
pub(super) struct Cursor {
    /// Primary addresses (`None`: the single server).
    nodes: Vec<Option<String>>,
    at: usize,
    cursor: u64,
}

impl Cursor {
    pub(super) async fn new(conn: &mut Conn) -> RedisResult<Cursor> {
        Ok(Cursor {
            nodes: primaries(conn).await?,
            at: 0,
            cursor: 0,
        })
    }
}

async fn primaries(conn: &mut Conn) -> RedisResult<Vec<Option<String>>> {
    let replies = conn.on_each_primary(redis::cmd("PING")).await?;
    Ok(replies.into_iter().map(|(node, _)| node).collect())
}

impl RedisBackend {
    fn cursor(&self) -> std::sync::MutexGuard<'_, Cursor> {
        self.sweep.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Scans up to `budget` keys of one primary for tag indexes and prunes their expired
    /// members; returns how many members went. The scan goes [`SCAN_STEP`] keys per `SCAN`
    /// call: one `SCAN` over 10,000 keys blocks Redis for milliseconds.
    pub(super) async fn sweep_step(&self, budget: usize) -> Result<usize, BackendError> {
        let mut removed = 0;
        let mut scanned = 0;
        while scanned < budget.max(1) {
            let step = (budget.max(1) - scanned).min(SCAN_STEP);
            let (pruned, wrapped) = self.sweep_scan(step).await?;
            removed += pruned;
            scanned += step;
            if wrapped {
                break;
            }
        }
        Ok(removed)
    }

    /// One `SCAN` of `count` keys and the pruning of the indexes it found; also says whether
    /// the cursor wrapped (this primary done).
    async fn sweep_scan(&self, count: usize) -> Result<(usize, bool), BackendError> {
        let mut conn = self.conn.clone();
        let (node, start) = {
            let c = self.cursor();
            (c.nodes.get(c.at).cloned().flatten(), c.cursor)
        };
        let mut scan = redis::cmd("SCAN");
        scan.arg(start)
            .arg("MATCH")
            .arg(format!("{}:*:t:*", self.options.prefix))
            .arg("COUNT")
            .arg(count);
        let reply = match conn.on_node(node.as_deref(), scan).await {
            Ok(reply) => reply,
            Err(e) => {
                // The cluster may have moved on (failover, new primaries): learn it again.
                if conn.is_cluster()
                    && let Ok(nodes) = primaries(&mut conn).await
                {
                    *self.cursor() = Cursor {
                        nodes,
                        at: 0,
                        cursor: 0,
                    };
                }
                return Err(self.error(e));
            }
        };
        let (next, indexes): (u64, Vec<String>) =
            redis::from_redis_value(reply).map_err(|e| self.error(e.into()))?;
        {
            let mut c = self.cursor();
            c.cursor = next;
            if next == 0 {
                c.at = (c.at + 1) % c.nodes.len().max(1);
            }
        }
        if indexes.is_empty() {
            return Ok((0, next == 0));
        }
        let now = now_ms();
        let removed: Vec<u64> = if conn.is_cluster() {
            // Indexes of different tenants live in different slots: one command each.
            let calls = indexes.iter().map(|index| {
                let mut conn = conn.clone();
                async move {
                    redis::cmd("ZREMRANGEBYSCORE")
                        .arg(index)
                        .arg("-inf")
                        .arg(now)
                        .query_async::<u64>(&mut conn)
                        .await
                }
            });
            join_all(calls)
                .await
                .into_iter()
                .collect::<RedisResult<_>>()
                .map_err(|e| self.error(e))?
        } else {
            let mut pipe = redis::pipe();
            for index in &indexes {
                pipe.cmd("ZREMRANGEBYSCORE").arg(index).arg("-inf").arg(now);
            }
            pipe.query_async(&mut conn)
                .await
                .map_err(|e| self.error(e))?
        };
        let removed = usize::try_from(removed.iter().sum::<u64>()).unwrap_or(usize::MAX);
        Ok((removed, next == 0))
    }
}
