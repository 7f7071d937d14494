//! The source's Redis connections and the stream commands it sends.
//!
//! Three connections per source: the reader's (its `XREADGROUP … BLOCK` holds a connection
//! until entries come, so nothing else may queue behind it), one for claims, dead letters
//! and gauges, and the acknowledger's. Each reconnects on its next use after a failure.

use std::collections::HashMap;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, RedisResult, Value};

use super::config::StreamConfig;
use super::entry::{Entry, parse_autoclaim, parse_read};

/// A connection made on first use and dropped after an error, so the next use reconnects.
pub(crate) struct Link {
    client: redis::Client,
    options: AsyncConnectionConfig,
    conn: Option<MultiplexedConnection>,
}

impl Link {
    /// `wait` is the longest a reply may take beyond a command's own blocking time.
    pub fn new(client: redis::Client, wait: Duration) -> Link {
        let options = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(wait));
        Link {
            client,
            options,
            conn: None,
        }
    }

    /// The connection, made now if there is none.
    pub async fn get(&mut self) -> RedisResult<&mut MultiplexedConnection> {
        let conn = match self.conn.take() {
            Some(conn) => conn,
            None => {
                self.client
                    .get_multiplexed_async_connection_with_config(&self.options)
                    .await?
            }
        };
        Ok(self.conn.insert(conn))
    }

    /// Forgets the connection after an error; the next [`Link::get`] makes a new one.
    pub fn broken(&mut self) {
        self.conn = None;
    }

    /// Runs `f` on the connection; forgets the connection when it fails.
    pub async fn run<T>(
        &mut self,
        f: impl AsyncFnOnce(&mut MultiplexedConnection) -> RedisResult<T>,
    ) -> RedisResult<T> {
        let result = match self.get().await {
            Ok(conn) => f(conn).await,
            Err(e) => Err(e),
        };
        if result.is_err() {
            self.broken();
        }
        result
    }
}

/// `XGROUP CREATE … 0 MKSTREAM`: a new group starts at the stream's first entry (nothing
/// written before the first consumer started is skipped). An existing group is fine.
pub(crate) async fn create_group(
    c: &mut MultiplexedConnection,
    cfg: &StreamConfig,
) -> RedisResult<()> {
    let created: RedisResult<Value> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&cfg.stream)
        .arg(&cfg.group)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(c)
        .await;
    match created {
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        other => other.map(|_| ()),
    }
}

/// `XREADGROUP` from `id` (`>`: new entries, waiting up to `block`; an id: this consumer's
/// own pending entries after it, at once).
pub(crate) async fn read(
    c: &mut MultiplexedConnection,
    cfg: &StreamConfig,
    id: &str,
    block: Option<Duration>,
) -> RedisResult<Vec<Entry>> {
    let mut cmd = redis::cmd("XREADGROUP");
    cmd.arg("GROUP").arg(&cfg.group).arg(&cfg.consumer);
    cmd.arg("COUNT").arg(cfg.batch);
    if let Some(block) = block {
        cmd.arg("BLOCK").arg(block.as_millis().max(1) as u64);
    }
    cmd.arg("STREAMS").arg(&cfg.stream).arg(id);
    let reply: Value = cmd.query_async(c).await?;
    parse_read(reply).map_err(parse_error)
}

/// One `XAUTOCLAIM` page from `cursor`: (next cursor, claimed entries, ids whose data was
/// trimmed away).
pub(crate) async fn autoclaim(
    c: &mut MultiplexedConnection,
    cfg: &StreamConfig,
    cursor: &str,
) -> RedisResult<(String, Vec<Entry>, Vec<String>)> {
    let reply: Value = redis::cmd("XAUTOCLAIM")
        .arg(&cfg.stream)
        .arg(&cfg.group)
        .arg(&cfg.consumer)
        .arg(cfg.claim_idle.as_millis() as u64)
        .arg(cursor)
        .arg("COUNT")
        .arg(cfg.batch)
        .query_async(c)
        .await?;
    parse_autoclaim(reply).map_err(parse_error)
}

/// How many times each of `ids` has been delivered (one `XPENDING` per id, in one pipeline).
/// An id no longer pending is absent.
pub(crate) async fn deliveries(
    c: &mut MultiplexedConnection,
    cfg: &StreamConfig,
    ids: &[&str],
) -> RedisResult<HashMap<String, u64>> {
    let mut pipe = redis::pipe();
    for id in ids {
        pipe.cmd("XPENDING")
            .arg(&cfg.stream)
            .arg(&cfg.group)
            .arg(*id)
            .arg(*id)
            .arg(1);
    }
    let replies: Vec<Vec<(String, String, u64, u64)>> = pipe.query_async(c).await?;
    Ok(replies
        .into_iter()
        .flatten()
        .map(|(id, _, _, times)| (id, times))
        .collect())
}

/// `XACK`s `ids`.
pub(crate) async fn ack(
    c: &mut MultiplexedConnection,
    cfg: &StreamConfig,
    ids: &[String],
) -> RedisResult<u64> {
    redis::cmd("XACK")
        .arg(&cfg.stream)
        .arg(&cfg.group)
        .arg(ids)
        .query_async(c)
        .await
}

/// Resets the idle time of this consumer's own `ids` (`XCLAIM … JUSTID` does not count a
/// delivery), so no other consumer claims work this one is still waiting on.
pub(crate) async fn touch(
    c: &mut MultiplexedConnection,
    cfg: &StreamConfig,
    ids: &[String],
) -> RedisResult<()> {
    let _: Value = redis::cmd("XCLAIM")
        .arg(&cfg.stream)
        .arg(&cfg.group)
        .arg(&cfg.consumer)
        .arg(0)
        .arg(ids)
        .arg("JUSTID")
        .query_async(c)
        .await?;
    Ok(())
}

/// One dead letter: what is filed about an entry.
pub(crate) struct DeadLetter<'a> {
    pub id: &'a str,
    pub reason: &'static str,
    pub error: &'a str,
    pub deliveries: u64,
    pub payload: Vec<u8>,
    pub payload_bytes: usize,
}

/// Files `letter` in the dead-letter stream and acknowledges the entry, in one `MULTI`: a
/// crash between the two cannot lose the entry (at worst it is filed twice).
pub(crate) async fn dead_letter(
    c: &mut MultiplexedConnection,
    cfg: &StreamConfig,
    letter: &DeadLetter<'_>,
) -> RedisResult<()> {
    let mut pipe = redis::pipe();
    pipe.atomic();
    pipe.cmd("XADD")
        .arg(&cfg.dead_letter)
        .arg("MAXLEN")
        .arg("~")
        .arg(cfg.dead_letter_maxlen)
        .arg("*")
        .arg("id")
        .arg(letter.id)
        .arg("stream")
        .arg(&cfg.stream)
        .arg("group")
        .arg(&cfg.group)
        .arg("consumer")
        .arg(&cfg.consumer)
        .arg("reason")
        .arg(letter.reason)
        .arg("error")
        .arg(letter.error)
        .arg("deliveries")
        .arg(letter.deliveries)
        .arg("payload")
        .arg(&letter.payload)
        .arg("payload_bytes")
        .arg(letter.payload_bytes)
        .ignore();
    pipe.cmd("XACK")
        .arg(&cfg.stream)
        .arg(&cfg.group)
        .arg(letter.id)
        .ignore();
    let () = pipe.query_async(c).await?;
    Ok(())
}

/// The group's pending count and lag (`XINFO GROUPS`); lag is `None` when Redis cannot
/// tell (after trimming past unread entries).
pub(crate) async fn group_gauges(
    c: &mut MultiplexedConnection,
    cfg: &StreamConfig,
) -> RedisResult<Option<(u64, Option<u64>)>> {
    let reply: redis::streams::StreamInfoGroupsReply = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(&cfg.stream)
        .query_async(c)
        .await?;
    Ok(reply
        .groups
        .into_iter()
        .find(|g| g.name == cfg.group)
        .map(|g| (g.pending as u64, g.lag.map(|l| l as u64))))
}

fn parse_error(message: String) -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::Parse, "unexpected stream reply", message))
}
