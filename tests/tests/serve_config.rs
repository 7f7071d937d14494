//! `tagbust serve`'s configuration, with the real binary as a process: what it refuses at
//! start (naming the key) and what reaches the backend. The Redis case uses database 10 of
//! the Redis on 6379 under a key prefix of its own.

use tagbust_tests::daemon::Daemon;
use tagbust_tests::{Scratch, components};

fn event(tenant: &str, emit: &str) -> Vec<u8> {
    format!(
        r#"{{"tenant":"{tenant}","resource":"things","operation":"update","context":{{"emit":"{emit}"}}}}"#
    )
    .into_bytes()
}

#[test]
fn it_refuses_to_listen_beyond_loopback_without_tokens_and_names_bad_config_keys() {
    let err = Daemon::try_start(&["--rules", components::ECHO, "--listen", "0.0.0.0:0"])
        .err()
        .expect("refused");
    assert!(
        err.contains("refusing to listen on 0.0.0.0:0 without any token"),
        "{err}"
    );
    let open = Daemon::try_start(&[
        "--rules",
        components::ECHO,
        "--listen",
        "0.0.0.0:0",
        "--insecure",
    ]);
    assert!(open.is_ok(), "--insecure allows it");
    let dir = Scratch::new("serve-config");
    let refused = |args: &[&str]| {
        let mut all = vec!["--rules", components::ECHO];
        all.extend_from_slice(args);
        Daemon::try_start(&all).err().expect("refused")
    };
    let config = dir.file(
        "tagbust.toml",
        b"listen = \"127.0.0.1:0\"\nlisten_port = 9\n",
    );
    let err = refused(&["--config", &config.display().to_string()]);
    assert!(
        err.contains("tagbust.toml") && err.contains("listen_port"),
        "{err}"
    );
    let config = dir.file("bad.toml", b"[backend]\nkind = \"memcached\"\n");
    let err = refused(&["--config", &config.display().to_string()]);
    assert!(err.contains("`backend.kind`"), "{err}");
    let err = refused(&["--backend-listed-keys", "65"]);
    assert!(err.contains("`backend.listed_keys`"), "{err}");
    let err = refused(&["--backend-entries-per-call", "0"]);
    assert!(err.contains("`backend.entries_per_call`"), "{err}");
    let err = refused(&["--backend-listed-keys", "0"]);
    assert!(err.contains("`backend.kind` is memory"), "{err}");
}

/// `backend.listed_keys` reaches the Redis backend: with 0, a removal is counted but lists
/// no key, so explain by key finds nothing; with the default it finds the removal.
#[test]
fn backend_listed_keys_decides_what_explain_can_find() {
    let redis = tagbust_tests::SharedRedis::new("redis://127.0.0.1:6379/10", "tbserve-listed");
    let client = redis::Client::open("redis://127.0.0.1:6379/10").expect("url");
    let mut conn = client.get_connection().expect("redis");
    for (listed, found) in [("0", 0), ("64", 1)] {
        let d = Daemon::start(&[
            "--rules",
            components::ECHO,
            "--listen",
            "127.0.0.1:0",
            "--backend",
            "redis",
            "--redis-url",
            "redis://127.0.0.1:6379/10",
            "--backend-prefix",
            redis.prefix(),
            "--backend-listed-keys",
            listed,
        ]);
        let entry = format!("{}:{{acme}}:e:k", redis.prefix());
        let index = format!("{}:{{acme}}:t:t", redis.prefix());
        let () = redis::cmd("SET")
            .arg(&entry)
            .arg("x")
            .query(&mut conn)
            .expect("set");
        let _: i64 = redis::cmd("ZADD")
            .arg(&index)
            .arg(9_007_199_254_740_991_u64)
            .arg("k")
            .query(&mut conn)
            .expect("zadd");
        let r = d.post("/v1/events?wait=applied", None, &event("acme", "tag=t"));
        assert_eq!(r.status, 200, "{r:?}");
        let exists: bool = redis::cmd("EXISTS")
            .arg(&entry)
            .query(&mut conn)
            .expect("exists");
        assert!(!exists, "removed whatever is listed");
        let why = d.get("/v1/explain?tenant=acme&key=k", None).json();
        assert_eq!(
            why.as_array().map(Vec::len),
            Some(found),
            "listed_keys {listed}: {why}"
        );
    }
}
