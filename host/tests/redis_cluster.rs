//! The Redis backend against a real 3-node Redis Cluster on loopback, which this test starts
//! itself (`redis-server --cluster-enabled yes` on ports 7301–7303, then
//! `redis-cli --cluster create`), so the suite runs the same locally and in CI. Set
//! `TAGBUST_TEST_CLUSTER_PORT` to move the three ports. One test owns the cluster and runs the
//! scenarios in turn, so the servers stop (on drop, also when a scenario fails) before the
//! test binary exits.
//!
//! What Cluster adds to the single-server tests: one batch touching tenants on different nodes,
//! a tenant's `SCAN` on the node owning its slot, and a sweeper that walks every primary.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

mod common;

use common::{entry, op, present};
use tagbust::backend::redis::{RedisBackend, RedisOptions};
use tagbust::{Backend, NewEntry, OpKind};

/// Three primaries, no replicas, data in a scratch directory; killed on drop.
struct Cluster {
    ports: [u16; 3],
    dir: PathBuf,
    children: Vec<Child>,
}

impl Cluster {
    fn start() -> Cluster {
        let base: u16 = std::env::var("TAGBUST_TEST_CLUSTER_PORT")
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(7301);
        let ports = [base, base + 1, base + 2];
        let dir = std::env::temp_dir().join(format!("tagbust-cluster-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        let mut children = Vec::new();
        for port in ports {
            // A node left over from an aborted run of this test holds the port: stop it.
            if let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}"))
                && let Ok(mut conn) = client.get_connection()
            {
                let _: Result<(), _> = redis::cmd("SHUTDOWN").arg("NOSAVE").query(&mut conn);
                std::thread::sleep(Duration::from_millis(200));
            }
            let node_dir = dir.join(port.to_string());
            std::fs::create_dir_all(&node_dir).expect("scratch directory");
            let child = Command::new("redis-server")
                .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
                .args([
                    "--cluster-enabled",
                    "yes",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .args(["--cluster-node-timeout", "2000"])
                .arg("--dir")
                .arg(&node_dir)
                .stdout(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("this test starts its own redis-server ({e}); .ci/run installs it")
                });
            children.push(child);
        }
        let cluster = Cluster {
            ports,
            dir,
            children,
        };
        for port in ports {
            cluster.wait_for(port, "PING", "PONG");
        }
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(ports.map(|p| format!("127.0.0.1:{p}")))
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .status()
            .expect("redis-cli (Debian's redis-tools) creates the cluster");
        assert!(created.success(), "redis-cli --cluster create failed");
        for port in ports {
            cluster.wait_for(port, "CLUSTER INFO", "cluster_state:ok");
        }
        cluster
    }

    fn wait_for(&self, port: u16, command: &str, expect: &str) {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).expect("url");
        for _ in 0..400 {
            if let Ok(mut conn) = client.get_connection() {
                let mut cmd = redis::Cmd::new();
                for word in command.split(' ') {
                    cmd.arg(word);
                }
                if let Ok(reply) = cmd.query::<String>(&mut conn)
                    && reply.contains(expect)
                {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("redis node on port {port} never answered {command} with {expect}");
    }

    fn nodes(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect()
    }

    /// Keys on the node at `port` under `prefix`.
    fn keys_on(&self, port: u16, prefix: &str) -> Vec<String> {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).expect("url");
        let mut conn = client.get_connection().expect("connect");
        redis::cmd("KEYS")
            .arg(format!("{prefix}:*"))
            .query(&mut conn)
            .expect("keys")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            child.kill().ok();
            child.wait().ok();
        }
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

/// A scenario's backend and prefix; the cluster's keys under the prefix are removed on drop.
struct Fixture<'c> {
    cluster: &'c Cluster,
    backend: RedisBackend,
    prefix: String,
}

impl<'c> Fixture<'c> {
    async fn new(cluster: &'c Cluster, name: &str, options: RedisOptions) -> Fixture<'c> {
        let prefix = format!("tbcluster-{name}");
        let backend = RedisBackend::connect_cluster(
            &cluster.nodes(),
            RedisOptions {
                prefix: prefix.clone(),
                ..options
            },
        )
        .await
        .expect("the cluster accepts the backend");
        Fixture {
            cluster,
            backend,
            prefix,
        }
    }

    /// Which node holds each tenant's keys (by port).
    fn placement(&self, tenants: &[&str]) -> Vec<(String, u16)> {
        let c = self.cluster;
        let mut out = Vec::new();
        for &port in &c.ports {
            let keys = c.keys_on(port, &self.prefix);
            for tenant in tenants {
                if keys.iter().any(|k| k.contains(&format!("{{{tenant}}}"))) {
                    out.push(((*tenant).to_owned(), port));
                }
            }
        }
        out.sort();
        out
    }
}

impl Drop for Fixture<'_> {
    fn drop(&mut self) {
        let c = self.cluster;
        for &port in &c.ports {
            let keys = c.keys_on(port, &self.prefix);
            if let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}"))
                && let Ok(mut conn) = client.get_connection()
            {
                for key in keys {
                    let _: Result<(), _> = redis::cmd("UNLINK").arg(key).query(&mut conn);
                }
            }
        }
    }
}

/// Tenants whose hash tags land on three different nodes of a 3-way split of the slots.
const TENANTS: [&str; 6] = ["acme", "globex", "initech", "umbrella", "hooli", "stark"];

#[tokio::test]
async fn redis_cluster() {
    let cluster = Cluster::start();
    every_kind_of_invalidation_works_on_a_cluster(&cluster).await;
    one_batch_spans_tenants_on_every_node(&cluster).await;
    a_pattern_scans_the_node_owning_the_tenant(&cluster).await;
    the_sweeper_walks_every_primary(&cluster).await;
    a_stale_fill_is_refused_on_a_cluster(&cluster).await;
}

async fn every_kind_of_invalidation_works_on_a_cluster(c: &Cluster) {
    let f = Fixture::new(c, "kinds", RedisOptions::default()).await;
    common::invalidation_kinds(&f.backend).await;
    common::leases_are_voided_by_every_kind_of_invalidation(&f.backend).await;
}

async fn one_batch_spans_tenants_on_every_node(c: &Cluster) {
    let f = Fixture::new(c, "spread", RedisOptions::default()).await;
    let b = &f.backend;
    for tenant in TENANTS {
        for i in 0..20 {
            b.set(entry(
                tenant,
                &format!("k{i}"),
                &["feed", &format!("item:{i}")],
            ))
            .await
            .expect("set");
        }
    }
    let nodes: BTreeSet<u16> = f
        .placement(&TENANTS)
        .into_iter()
        .map(|(_, port)| port)
        .collect();
    assert_eq!(
        nodes.len(),
        3,
        "the tenants are spread over all three nodes"
    );

    // Tags, keys and versions of every tenant, interleaved, in one batch.
    let mut ops = Vec::new();
    for i in 0..10 {
        for tenant in TENANTS {
            ops.push(op(tenant, OpKind::Key, &format!("k{i}")));
            ops.push(op(tenant, OpKind::Tag, &format!("item:{}", i + 10)));
        }
    }
    let out = b.apply(&ops).await.expect("a cross-node batch applies");
    assert_eq!(out.len(), ops.len(), "one outcome per operation, in order");
    assert!(
        out.iter().all(|o| o.removed == 1),
        "every operation removed its one entry: {out:?}"
    );
    for (o, op) in out.iter().zip(&ops) {
        if op.kind == OpKind::Key {
            assert_eq!(o.keys, vec![op.value.clone()], "outcomes line up with ops");
        }
    }
    for tenant in TENANTS {
        for i in 0..20 {
            assert!(!present(b, tenant, &format!("k{i}")).await, "{tenant} k{i}");
        }
    }
}

async fn a_pattern_scans_the_node_owning_the_tenant(c: &Cluster) {
    let f = Fixture::new(c, "pattern", RedisOptions::default()).await;
    let b = &f.backend;
    for tenant in TENANTS {
        for i in 0..30 {
            b.set(entry(tenant, &format!("report:{i}"), &[]))
                .await
                .expect("set");
        }
        b.set(entry(tenant, "other", &[])).await.expect("set");
    }
    // Each tenant's pattern, wherever the tenant lives.
    for tenant in TENANTS {
        let out = b
            .apply(&[op(tenant, OpKind::Pattern, "report:*")])
            .await
            .expect("apply");
        assert_eq!(out[0].removed, 30, "{tenant}: every match removed");
        assert!(out[0].refused.is_none());
        assert!(present(b, tenant, "other").await);
    }
    // And a whole tenant, leaving the others.
    b.apply(&[op("acme", OpKind::Tenant, "")])
        .await
        .expect("apply");
    assert!(!present(b, "acme", "other").await);
    assert!(present(b, "globex", "other").await);
}

async fn the_sweeper_walks_every_primary(c: &Cluster) {
    let f = Fixture::new(c, "sweep", RedisOptions::default()).await;
    let b = &f.backend;
    for tenant in TENANTS {
        b.set(NewEntry {
            ttl: Some(Duration::from_millis(20)),
            ..entry(tenant, "brief", &["short"])
        })
        .await
        .expect("set");
        // A long-lived member keeps each index alive after the brief one expires.
        b.set(entry(tenant, "long", &["short"])).await.expect("set");
    }
    tokio::time::sleep(Duration::from_millis(60)).await;
    let mut pruned = 0;
    // Enough passes to walk three nodes' keyspaces with a small budget.
    for _ in 0..200 {
        pruned += b.sweep(16).await.expect("sweep");
        if pruned >= TENANTS.len() {
            break;
        }
    }
    assert_eq!(
        pruned,
        TENANTS.len(),
        "one expired member per tenant's index"
    );
}

async fn a_stale_fill_is_refused_on_a_cluster(c: &Cluster) {
    let f = Fixture::new(c, "fill", RedisOptions::default()).await;
    let b = &f.backend;
    let lease = b
        .begin_fill("hooli", "profile", &["user:1".into()])
        .await
        .expect("lease");
    b.apply(&[op("hooli", OpKind::Tag, "user:1")])
        .await
        .expect("apply");
    let outcome = b
        .complete_fill(lease, entry("hooli", "profile", &["user:1"]))
        .await
        .expect("fill");
    assert_eq!(outcome, tagbust::FillOutcome::Refused);
    assert!(!present(b, "hooli", "profile").await);
}
