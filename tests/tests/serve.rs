//! `tagbust serve` as a real process: every endpoint, every error code, who may do what, and
//! a shutdown that flushes what it accepted. The daemon listens on 127.0.0.1:0 and says
//! where on its first line of output; the Redis cases use database 10 of the Redis on 6379
//! under a key prefix of their own.

use std::time::Duration;

use sha2::{Digest, Sha256};
use tagbust_tests::daemon::Daemon;
use tagbust_tests::{Scratch, components};

const ADMIN: &str = "admin-token-0123456789";
const TOKEN_A: &str = "token-of-tenant-a-0001";
const TOKEN_B: &str = "token-of-tenant-b-0002";

fn event(tenant: &str, emit: &str) -> Vec<u8> {
    format!(
        r#"{{"tenant":"{tenant}","resource":"things","operation":"update","context":{{"emit":"{emit}"}}}}"#
    )
    .into_bytes()
}

fn hex_sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Two tenants from manifests, each with its token; an admin token; `extra` lines per manifest.
fn platform(name: &str, extra: &str) -> (Scratch, Vec<String>) {
    let dir = Scratch::new(name);
    let echo = std::fs::read(components::ECHO).expect("echo built");
    dir.file("echo.wasm", &echo);
    for (tenant, token) in [("a", TOKEN_A), ("b", TOKEN_B)] {
        let text = format!(
            "tenant = \"{tenant}\"\n{extra}\n[[rule]]\npath = \"echo.wasm\"\nsha256 = \"{}\"\n\n[auth]\ntoken_sha256 = [\"{}\"]\n",
            hex_sha(&echo),
            hex_sha(token.as_bytes())
        );
        dir.file(&format!("{tenant}.toml"), text.as_bytes());
    }
    let admin = dir.file("admin.token", ADMIN.as_bytes());
    let args = vec![
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--manifests".into(),
        dir.0.display().to_string(),
        "--admin-token-file".into(),
        admin.display().to_string(),
    ];
    (dir, args)
}

fn start(args: &[String]) -> Daemon {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Daemon::start(&args)
}

#[test]
fn quick_start_serves_events_explain_health_and_metrics() {
    let d = Daemon::start(&["--rules", components::ECHO, "--listen", "127.0.0.1:0"]);
    let r = d.post("/v1/events", None, &event("acme", "key=k1 tag=t@batched"));
    assert_eq!(r.status, 200, "{r:?}");
    let report = r.json();
    assert_eq!(
        (report["targets"].as_u64(), report["applied"].as_u64()),
        (Some(2), Some(1))
    );
    let r = d.post(
        "/v1/events?wait=applied",
        None,
        &event("acme", "tag=later@batched"),
    );
    assert_eq!(r.status, 200, "answered once applied: {r:?}");
    let why = d.get("/v1/explain?tenant=acme&key=k1", None).json();
    assert_eq!(
        why.as_array().map(Vec::len),
        Some(0),
        "nothing cached, nothing removed"
    );
    assert_eq!(d.get("/healthz", None).status, 200);
    assert_eq!(d.get("/readyz", None).status, 200);
    let metrics = d.get("/metrics", None).body;
    assert!(metrics.contains("tagbust_events_total 2"), "{metrics}");
    assert!(metrics.contains("tagbust_rule_call_seconds"), "{metrics}");
    let stats = d.get("/v1/stats", None).json();
    assert_eq!(stats["events"], 2);
}

#[test]
fn bad_requests_name_what_is_wrong() {
    let d = Daemon::start(&[
        "--rules",
        components::ECHO,
        "--listen",
        "127.0.0.1:0",
        "--max-body-bytes",
        "4096",
    ]);
    let r = d.post("/v1/events", None, b"{\"tenant\":");
    assert_eq!(r.status, 400, "{r:?}");
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap_or("")
            .contains("truncated JSON")
    );
    let r = d.post(
        "/v1/events",
        None,
        br#"[{"tenant":"a","resource":"r","operation":"update"},{"tenant":"a","resource":"r","operation":"obliterate"}]"#,
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        (r.json()["index"].as_u64(), r.json()["field"].as_str()),
        (Some(1), Some("operation"))
    );
    let r = d.post("/v1/events", None, &vec![b' '; 8192]);
    assert_eq!(r.status, 413, "past the byte cap: {r:?}");
    let r = d.post("/v1/events?wait=soon", None, &event("a", "key=k"));
    assert_eq!(r.status, 400);
    let r = d.post(
        "/v1/invalidate",
        None,
        br#"{"tenant":"a","targets":[{"kind":"key","value":"../x"}]}"#,
    );
    assert_eq!(
        (r.status, r.json()["field"].as_str()),
        (400, Some("targets[0]")),
        "{r:?}"
    );
    let metrics = d.get("/metrics", None).body;
    assert!(
        metrics.contains("tagbust_http_refused_total{reason=\"bad_request\"} 4"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tagbust_http_refused_total{reason=\"too_large\"} 1"),
        "{metrics}"
    );
}

#[test]
fn every_endpoint_refuses_no_token_a_wrong_token_and_another_tenants_token() {
    let (_dir, args) = platform("serve-auth", "");
    let d = start(&args);
    let ev = event("a", "key=k");
    let tenant_scoped: [(&str, &str, &[u8]); 5] = [
        ("POST", "/v1/events", &ev),
        ("POST", "/v1/transactions/a/tx-1/commit", b""),
        ("POST", "/v1/transactions/a/tx-1/rollback", b""),
        (
            "POST",
            "/v1/invalidate",
            br#"{"tenant":"a","targets":[{"kind":"key","value":"k"}]}"#,
        ),
        ("GET", "/v1/explain?tenant=a&key=k", b""),
    ];
    let admin_only: [(&str, &str, &[u8]); 3] = [
        ("POST", "/v1/tenants/a/clear", b""),
        ("GET", "/v1/stats", b""),
        ("POST", "/v1/admin/reload", b""),
    ];
    let call = |method: &str, path: &str, token: Option<&str>, body: &[u8]| {
        tagbust_tests::daemon::request(d.addr, method, path, token, body).status
    };
    for (method, path, body) in tenant_scoped.iter().chain(&admin_only) {
        assert_eq!(
            call(method, path, None, body),
            401,
            "{path} without a token"
        );
        assert_eq!(
            call(method, path, Some("not-a-token-at-all"), body),
            401,
            "{path} wrong"
        );
        assert_eq!(
            call(method, path, Some(TOKEN_B), body),
            403,
            "{path} with b's token"
        );
        assert_eq!(
            call(method, path, Some(ADMIN), body),
            200,
            "{path} as admin"
        );
    }
    for (method, path, body) in &tenant_scoped {
        assert_eq!(
            call(method, path, Some(TOKEN_A), body),
            200,
            "{path} with a's token"
        );
    }
    for (method, path, body) in &admin_only {
        assert_eq!(
            call(method, path, Some(TOKEN_A), body),
            403,
            "{path} needs the admin"
        );
    }
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(call("GET", path, None, b""), 200, "{path} is open");
    }
    // An event of tenant b in a's batch: refused whole, naming the event.
    let mixed = format!(
        "[{},{}]",
        String::from_utf8_lossy(&event("a", "key=k")),
        String::from_utf8_lossy(&event("b", "key=k"))
    );
    let r = d.post("/v1/events", Some(TOKEN_A), mixed.as_bytes());
    assert_eq!(
        (r.status, r.json()["index"].as_u64()),
        (403, Some(1)),
        "{r:?}"
    );
    let metrics = d.get("/metrics", None).body;
    assert!(
        metrics.contains("tagbust_http_refused_total{reason=\"unauthorized\"} 16"),
        "{metrics}"
    );
    let log = d.wait_killed();
    assert!(
        !log.contains(TOKEN_A) && !log.contains(ADMIN),
        "tokens never reach the log"
    );
}

#[test]
fn unknown_tenants_and_rate_limits_are_refused_with_their_codes() {
    let (_dir, args) = platform("serve-rate", "[limits]\nmax_events_per_second = 2\n");
    let d = start(&args);
    let r = d.post("/v1/events", Some(ADMIN), &event("nobody", "key=k"));
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (404, Some("unknown_tenant"))
    );
    let mut limited = None;
    for _ in 0..10 {
        let r = d.post("/v1/events", Some(TOKEN_A), &event("a", "key=k"));
        if r.status == 429 {
            limited = Some(r);
            break;
        }
        assert_eq!(r.status, 200, "{r:?}");
    }
    let r = limited.expect("the rate limit pushes back");
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.json()["error"], "rate_limited");
}

#[test]
fn a_broken_manifest_on_reload_leaves_the_old_version_live() {
    let (dir, args) = platform("serve-reload", "");
    let d = start(&args);
    dir.file(
        "a.toml",
        b"tenant = \"a\"\n[[rule]]\npath = \"echo.wasm\"\nsha256 = \"00\"\n",
    );
    let r = d.post("/v1/admin/reload", Some(ADMIN), b"");
    assert_eq!(r.status, 422, "{r:?}");
    let failed = r.json()["failed"].to_string();
    assert!(
        failed.contains("a.toml") && failed.contains("rule[0].sha256"),
        "{failed}"
    );
    // a's old setup (and token) still serves.
    let r = d.post("/v1/events", Some(TOKEN_A), &event("a", "key=k"));
    assert_eq!(r.status, 200, "{r:?}");
    // SIGHUP reloads too; the broken file is still refused and nothing changes.
    d.signal("HUP");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        d.post("/v1/events", Some(TOKEN_A), &event("a", "key=k"))
            .status,
        200
    );
}

#[test]
fn sigterm_flushes_the_batch_window_into_redis_before_exiting() {
    let redis = tagbust_tests::SharedRedis::new("redis://127.0.0.1:6379/10", "tbserve-term");
    let dir = Scratch::new("serve-term");
    let config = dir.file(
        "tagbust.toml",
        format!(
            "listen = \"127.0.0.1:0\"\n[backend]\nkind = \"redis\"\nurl = \"redis://127.0.0.1:6379/10\"\nprefix = \"{}\"\n[host]\nbatch_window_ms = 5000\n",
            redis.prefix()
        )
        .as_bytes(),
    );
    let d = Daemon::start(&[
        "--rules",
        components::ECHO,
        "--config",
        &config.display().to_string(),
    ]);
    // An entry tagged `t`, stored the way any client would (the documented layout).
    let client = redis::Client::open("redis://127.0.0.1:6379/10").expect("url");
    let mut conn = client.get_connection().expect("redis");
    let entry = format!("{}:{{acme}}:e:k", redis.prefix());
    let index = format!("{}:{{acme}}:t:t", redis.prefix());
    let () = redis::cmd("HSET")
        .arg(&entry)
        .arg("v")
        .arg("x")
        .query(&mut conn)
        .expect("hset");
    let () = redis::cmd("ZADD")
        .arg(&index)
        .arg(9_007_199_254_740_991_u64)
        .arg("k")
        .query(&mut conn)
        .map(|_: i64| ())
        .expect("zadd");
    let r = d.post("/v1/events", None, &event("acme", "tag=t@batched"));
    assert_eq!(r.json()["batched"], 1, "{r:?}");
    let exists: bool = redis::cmd("EXISTS")
        .arg(&entry)
        .query(&mut conn)
        .expect("exists");
    assert!(exists, "still in its 5 s window");
    d.signal("TERM");
    let (code, log) = d.wait(Duration::from_secs(10));
    assert_eq!(code, Some(0), "{log}");
    let exists: bool = redis::cmd("EXISTS")
        .arg(&entry)
        .query(&mut conn)
        .expect("exists");
    assert!(!exists, "flushed at shutdown, not lost with the process");
}

#[test]
fn the_admin_token_may_come_from_the_environment_and_backpressure_is_a_429() {
    let args = [
        "--rules",
        components::ECHO,
        "--listen",
        "127.0.0.1:0",
        "--max-pending-ops",
        "1",
        "--batch-window-ms",
        "5000",
    ];
    let d = Daemon::start_with(&args, &[("TAGBUST_ADMIN_TOKEN", ADMIN)]);
    assert_eq!(d.get("/v1/stats", None).status, 401);
    assert_eq!(d.get("/v1/stats", Some(ADMIN)).status, 200);
    // One batched operation fills the queue (--max-pending-ops 1): the next is pushed back.
    let r = d.post("/v1/events", Some(ADMIN), &event("a", "tag=x@batched"));
    assert_eq!(r.status, 200, "{r:?}");
    let r = d.post("/v1/events", Some(ADMIN), &event("a", "tag=y@batched"));
    assert_eq!(
        (r.status, r.header("retry-after")),
        (429, Some("1")),
        "{r:?}"
    );
    assert_eq!(r.json()["error"], "backpressure");
    let err = Daemon::try_start_with_env(&args, &[("TAGBUST_ADMIN_TOKEN", "short")])
        .err()
        .expect("refused");
    assert!(
        err.contains("TAGBUST_ADMIN_TOKEN: the admin token must be at least 16"),
        "{err}"
    );
}
