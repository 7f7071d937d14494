//! One connection type for a single Redis server and for Redis Cluster.
//!
//! Scripts and pipelines are routed by their first key: every key a call touches carries the
//! tenant's hash tag, so a call always lands on the node owning that tenant's slot. What has no
//! key (`SCAN`, `CONFIG GET`) is routed explicitly: a tenant's scan to its slot's primary, the
//! eviction check and the sweeper to every primary.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{
    MultipleNodeRoutingInfo, Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr,
};
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};

/// Where to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topology {
    /// One server (or a proxy in front of many): `redis://host:port/db`.
    Single(String),
    /// A Redis Cluster, found from one or more of its nodes (`redis://host:port`; database 0
    /// only, as Cluster has no others).
    Cluster(Vec<String>),
}

impl Topology {
    /// How the topology is named in errors and logs.
    pub fn describe(&self) -> String {
        match self {
            Topology::Single(url) => url.clone(),
            Topology::Cluster(nodes) => format!("cluster {}", nodes.join(",")),
        }
    }
}

#[derive(Clone)]
pub(super) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Conn {
    /// Connects with `timeout` for connecting and for every response; reconnects are the
    /// client's (ConnectionManager, or the cluster connection's own slot refresh).
    pub(super) async fn open(topology: &Topology, timeout: Duration) -> RedisResult<Conn> {
        match topology {
            Topology::Single(url) => {
                let client = redis::Client::open(url.as_str())?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout))
                    .set_number_of_retries(2);
                Ok(Conn::Single(
                    ConnectionManager::new_with_config(client, config).await?,
                ))
            }
            Topology::Cluster(nodes) => {
                let client = ClusterClient::builder(nodes.iter().map(String::as_str))
                    .connection_timeout(timeout)
                    .response_timeout(timeout)
                    .retries(2)
                    .build()?;
                Ok(Conn::Cluster(client.get_async_connection().await?))
            }
        }
    }

    /// Runs `cmd` on the primary that owns the slot of `key`.
    pub(super) async fn on_slot_of(&mut self, key: &str, cmd: Cmd) -> RedisResult<Value> {
        match self {
            Conn::Single(c) => cmd.query_async(c).await,
            Conn::Cluster(c) => {
                let route = Route::with_key(key.as_bytes(), SlotAddr::Master);
                c.route_command(
                    cmd,
                    RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route)),
                )
                .await
            }
        }
    }

    /// Runs `cmd` on every primary; one reply per node, with the node's address (`None` on a
    /// single server).
    pub(super) async fn on_each_primary(
        &mut self,
        cmd: Cmd,
    ) -> RedisResult<Vec<(Option<String>, Value)>> {
        match self {
            Conn::Single(c) => Ok(vec![(None, cmd.query_async(c).await?)]),
            Conn::Cluster(c) => {
                let reply = c
                    .route_command(
                        cmd,
                        RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None)),
                    )
                    .await?;
                let Value::Map(pairs) = reply else {
                    return Ok(vec![(None, reply)]);
                };
                pairs
                    .into_iter()
                    .map(|(node, value)| {
                        let node: String = redis::from_redis_value(node)?;
                        Ok((Some(node), value))
                    })
                    .collect()
            }
        }
    }

    /// Runs `cmd` on the node at `address` (`host:port`), or on the single server.
    pub(super) async fn on_node(&mut self, address: Option<&str>, cmd: Cmd) -> RedisResult<Value> {
        match (self, address) {
            (Conn::Cluster(c), Some(address)) => {
                let (host, port) = address.rsplit_once(':').unwrap_or((address, "6379"));
                let port = port.parse().map_err(|_| {
                    redis::RedisError::from((
                        redis::ErrorKind::InvalidClientConfig,
                        "cluster node address without a port",
                        address.to_owned(),
                    ))
                })?;
                let routing = SingleNodeRoutingInfo::ByAddress {
                    host: host.to_owned(),
                    port,
                };
                c.route_command(cmd, RoutingInfo::SingleNode(routing)).await
            }
            (Conn::Single(c), _) => cmd.query_async(c).await,
            (Conn::Cluster(c), None) => cmd.query_async(c).await,
        }
    }

    pub(super) fn is_cluster(&self) -> bool {
        matches!(self, Conn::Cluster(_))
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}
