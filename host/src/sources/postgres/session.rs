//! The read loop: one replication session at a time, reconnecting with backoff; committed
//! transactions into the host, their acknowledgement through the low-water mark.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use pgwire_replication::{Lsn, ReplicationClient, ReplicationConfig, ReplicationEvent};
use tokio_util::sync::CancellationToken;

use super::acker::Acks;
use super::assemble::TxBuilder;
use super::config::{PgConfig, PgError, TenantFrom};
use super::decode::{Change, decode};
use super::mapping::Mapper;
use super::setup::{self, SetupError};
use super::stats::PgStats;
use crate::backend::Backend;
use crate::model::{EventLimits, Operation};
use crate::pipeline::Tagbust;

/// How a session ended.
pub(super) enum Ended {
    Shutdown,
    Retry(String),
}

/// A transaction between its Begin and its Commit.
pub(super) struct Open {
    pub xid: u32,
    pub tx: TxBuilder,
}

pub struct Source<B: Backend> {
    pub host: Tagbust<B>,
    pub limits: EventLimits,
    pub cfg: Arc<PgConfig>,
    pub stats: Arc<PgStats>,
    pub shutdown: CancellationToken,
    pub acks: Acks,
    /// End of the latest commit received in this process (a lower one is a redelivery).
    pub max_end: u64,
}

impl<B: Backend> Source<B> {
    pub async fn run(mut self) -> Result<(), PgError> {
        let mut wait = self.cfg.backoff;
        loop {
            if self.shutdown.is_cancelled() {
                return Ok(());
            }
            let (mut client, primary_keys) = match self.connect().await {
                Ok(client) => client,
                Err(SetupError::Fatal(e)) => return Err(e),
                Err(SetupError::Retry(e)) => {
                    self.lost(&format!("cannot connect: {e}"), &mut wait).await;
                    continue;
                }
            };
            self.stats.add(&self.stats.connects, 1);
            self.stats.connected.store(true, Ordering::Relaxed);
            wait = self.cfg.backoff;
            let ended = self
                .stream(&mut client, Mapper::new(&self.cfg, primary_keys))
                .await;
            self.stats.connected.store(false, Ordering::Relaxed);
            match ended {
                Ok(Ended::Shutdown) => {
                    self.drain(&mut client).await;
                    return Ok(());
                }
                Ok(Ended::Retry(why)) => {
                    client.abort();
                    self.lost(&why, &mut wait).await;
                }
                Err(e) => {
                    client.abort();
                    return Err(e);
                }
            }
        }
    }

    /// Counts and logs a lost or failed connection, then waits (doubling, up to 30 s),
    /// unless shutdown comes first.
    async fn lost(&self, why: &str, wait: &mut Duration) {
        self.stats.add(&self.stats.connection_errors, 1);
        tracing::warn!(slot = %self.cfg.slot, error = %why, retry_in = ?*wait, "postgres source: reconnecting");
        tokio::select! {
            _ = self.shutdown.cancelled() => {}
            _ = tokio::time::sleep(*wait) => {}
        }
        *wait = (*wait * 2).min(Duration::from_secs(30));
    }

    #[allow(
        clippy::type_complexity,
        reason = "a client and its primary keys, used once by the caller"
    )]
    async fn connect(
        &self,
    ) -> Result<
        (
            ReplicationClient,
            std::collections::HashMap<(String, String), Vec<String>>,
        ),
        SetupError,
    > {
        let c = &self.cfg;
        let config = ReplicationConfig::new(
            &c.host,
            &c.user,
            &c.password,
            &c.database,
            &c.slot,
            c.publication.as_str(),
        )
        .with_port(c.port)
        .with_start_lsn(Lsn::ZERO)
        .with_ack_lsn(Lsn::from_u64(self.acks.confirmed()))
        .with_status_interval(c.status_interval)
        .with_application_name("tagbust");
        let mut client = ReplicationClient::connect_gated(config)
            .await
            .map_err(SetupError::Retry)?;
        let keys = match setup::prepare(&mut client, c).await {
            Ok(keys) => keys,
            Err(e) => {
                client.abort();
                return Err(e);
            }
        };
        client.start().await.map_err(SetupError::Retry)?;
        if let Err(e) = client.wait_started().await {
            client.abort();
            return Err(if setup::is_permission(&e) {
                SetupError::Fatal(PgError::Permission {
                    user: c.user.clone(),
                    what: "start replication".into(),
                    message: e.to_string(),
                })
            } else {
                SetupError::Retry(e)
            });
        }
        tracing::info!(slot = %c.slot, publication = %c.publication, "postgres source: streaming");
        Ok((client, keys))
    }

    pub(super) fn confirm(&self, client: &ReplicationClient) {
        let confirmed = self.acks.confirmed();
        client.update_applied_lsn(Lsn::from_u64(confirmed));
        self.stats.set(&self.stats.confirmed_lsn, confirmed);
        self.stats
            .set(&self.stats.in_flight, self.acks.len() as u64);
        self.stats.set(
            &self.stats.oldest_unapplied_us,
            self.acks.oldest().unwrap_or(0),
        );
    }

    /// One acknowledgement from the queue.
    fn settled(
        &mut self,
        client: &ReplicationClient,
        result: Result<u64, crate::pipeline::NotApplied>,
    ) {
        match result {
            Ok(_) => self.stats.add(&self.stats.transactions_acked, 1),
            Err(e) => {
                self.stats.add(&self.stats.not_applied, 1);
                tracing::warn!(error = %e, "postgres source: a transaction was not applied; it stays unacknowledged");
                self.acks.stop();
            }
        }
        self.confirm(client);
    }

    async fn stream(
        &mut self,
        client: &mut ReplicationClient,
        mut mapper: Mapper,
    ) -> Result<Ended, PgError> {
        let mut open: Option<Open> = None;
        let max = self.cfg.max_in_flight;
        loop {
            let event = tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => return Ok(Ended::Shutdown),
                Some(result) = self.acks.next(), if !self.acks.is_empty() => {
                    self.settled(client, result);
                    continue;
                }
                event = client.recv(), if self.acks.len() < max => event,
            };
            let event = match event {
                Ok(Some(event)) => event,
                Ok(None) => return Ok(Ended::Retry("the server ended replication".into())),
                Err(e) => return Ok(Ended::Retry(e.to_string())),
            };
            match event {
                ReplicationEvent::KeepAlive { wal_end, .. } => {
                    self.stats.raise(&self.stats.server_lsn, wal_end.as_u64());
                    if open.is_none() && self.acks.idle_to(wal_end.as_u64()) {
                        self.stats.add(&self.stats.keepalives_acked, 1);
                        self.confirm(client);
                    }
                }
                ReplicationEvent::Begin { xid, .. } => {
                    open = Some(Open {
                        xid,
                        tx: TxBuilder::default(),
                    });
                }
                ReplicationEvent::XLogData { wal_end, data, .. } => {
                    self.stats.raise(&self.stats.server_lsn, wal_end.as_u64());
                    let change = match decode(&data) {
                        Ok(change) => change,
                        Err(e) => {
                            self.stats.add(&self.stats.decode_errors, 1);
                            return Ok(Ended::Retry(e.to_string()));
                        }
                    };
                    self.change(&mut mapper, open.as_mut(), change)?;
                }
                ReplicationEvent::Message {
                    transactional,
                    prefix,
                    content,
                    ..
                } => {
                    if prefix != "tagbust" {
                        continue;
                    }
                    match (transactional, open.as_mut()) {
                        (true, Some(o)) => match o.tx.message(&content) {
                            Ok(()) => self.stats.add(&self.stats.messages, 1),
                            Err(e) => {
                                self.stats.add(&self.stats.messages_invalid, 1);
                                tracing::warn!(xid = o.xid, error = %e, "postgres source: a `tagbust` message was ignored");
                            }
                        },
                        _ => {
                            self.stats.add(&self.stats.messages_invalid, 1);
                            tracing::warn!(
                                "postgres source: a non-transactional `tagbust` message was ignored (emit it with transactional = true)"
                            );
                        }
                    }
                }
                ReplicationEvent::Commit {
                    lsn,
                    end_lsn,
                    commit_time_micros,
                } => {
                    let Some(o) = open.take() else {
                        return Ok(Ended::Retry("a commit without a begin".into()));
                    };
                    if let Some(ended) = self
                        .commit(client, o, lsn, end_lsn, commit_time_micros)
                        .await
                    {
                        return Ok(ended);
                    }
                }
                ReplicationEvent::StoppedAt { .. } => {}
            }
        }
    }

    fn change(
        &mut self,
        mapper: &mut Mapper,
        open: Option<&mut Open>,
        change: Change,
    ) -> Result<(), PgError> {
        let (relation, old, new, op) = match change {
            Change::Relation(r) => return mapper.relation(r),
            Change::Skipped => return Ok(()),
            Change::Truncate { relations } => {
                let Some(o) = open else { return Ok(()) };
                for id in relations {
                    let Some((r, Some(map))) = mapper.get(id) else {
                        continue;
                    };
                    let tenants = match &map.tenant {
                        TenantFrom::Fixed(t) => vec![t.clone()],
                        TenantFrom::Schema => vec![r.schema.clone()],
                        TenantFrom::Column(_) => self.host.tenant_ids(),
                    };
                    if tenants.is_empty() {
                        self.stats.add(&self.stats.rows_skipped, 1);
                        tracing::warn!(table = %r.table, "TRUNCATE of a table whose tenant is a column, and no tenant is listed: nothing to invalidate");
                    }
                    o.tx.truncate(&tenants, &map.resource);
                }
                return Ok(());
            }
            Change::Insert { relation, new } => (relation, None, Some(new), Operation::Create),
            Change::Update { relation, old, new } => (relation, old, Some(new), Operation::Update),
            Change::Delete { relation, old } => (relation, Some(old), None, Operation::Delete),
        };
        let Some(o) = open else { return Ok(()) };
        match mapper.get(relation) {
            Some((r, Some(map))) => o.tx.row(
                r,
                map,
                op,
                old.as_deref(),
                new.as_deref(),
                self.limits.max_changes,
            ),
            _ => o.tx.skipped += 1,
        }
        Ok(())
    }

    /// After shutdown: waits (up to `drain_timeout`) for submitted commits to be applied,
    /// confirms the mark, and stops the session once the server has been told.
    async fn drain(&mut self, client: &mut ReplicationClient) {
        let deadline = tokio::time::Instant::now() + self.cfg.drain_timeout;
        while !self.acks.is_empty() {
            match tokio::time::timeout_at(deadline, self.acks.next()).await {
                Ok(Some(result)) => self.settled(client, result),
                Ok(None) => break,
                Err(_) => {
                    tracing::warn!(
                        in_flight = self.acks.len(),
                        "postgres source: stopped with transactions unapplied; they will be redelivered"
                    );
                    break;
                }
            }
        }
        self.confirm(client);
        let target = Lsn::from_u64(self.acks.confirmed());
        let metrics = client.metrics();
        let wait_until =
            tokio::time::Instant::now() + self.cfg.status_interval + Duration::from_secs(2);
        while metrics.last_applied_lsn() < target && tokio::time::Instant::now() < wait_until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if let Err(e) = client.shutdown().await {
            tracing::debug!(error = %e, "postgres source: closing the session");
        }
    }
}
