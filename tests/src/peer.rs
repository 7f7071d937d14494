//! For the Redis benchmark: a private, non-persistent `redis-server` and the Symfony Cache
//! peer (`tests/peers/symfony.php`) run against it.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` of the benchmark's own (no persistence, `SLOWLOG` over 1 ms), stopped
/// by its PID when dropped.
pub struct Private {
    pub port: u16,
    child: Child,
}

impl Private {
    pub fn start(port: u16) -> Private {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .args([
                "--slowlog-log-slower-than",
                "1000",
                "--slowlog-max-len",
                "10000",
            ])
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("the Redis benchmark starts its own redis-server: {e}"));
        // `TAGBUST_BENCH_REDIS_CPU=N` pins the server to CPU N (run the bench itself under
        // `taskset` on another), so that the bench's own threads do not preempt Redis
        // mid-call and show up in `SLOWLOG` as long calls.
        if let Ok(cpu) = std::env::var("TAGBUST_BENCH_REDIS_CPU") {
            let pinned = Command::new("taskset")
                .args(["-a", "-cp", &cpu, &child.id().to_string()])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            assert!(pinned, "taskset could not pin redis-server to CPU {cpu}");
        }
        let server = Private { port, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while server.conn().is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server on {port} did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn conn(&self) -> redis::RedisResult<redis::Connection> {
        let mut conn = redis::Client::open(self.url())?.get_connection()?;
        redis::cmd("PING").query::<String>(&mut conn)?;
        Ok(conn)
    }

    /// Redis's own CPU time so far (user + system), in µs.
    pub fn cpu_us(&self) -> f64 {
        let info: String = redis::cmd("INFO")
            .arg("cpu")
            .query(&mut self.conn().expect("connect"))
            .expect("info");
        let field = |name: &str| -> f64 {
            info.lines()
                .find_map(|l| l.strip_prefix(&format!("{name}:")))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0.0)
        };
        (field("used_cpu_user") + field("used_cpu_sys")) * 1e6
    }

    /// Per command since the last call (and resets the counters): name, calls, µs in all.
    /// Commands a script runs are counted too, so this says where a script's time goes.
    pub fn commandstats(&self) -> Vec<(String, u64, f64)> {
        let mut conn = self.conn().expect("connect");
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query(&mut conn)
            .expect("info commandstats");
        let () = redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .query(&mut conn)
            .expect("config resetstat");
        let mut stats: Vec<(String, u64, f64)> = info
            .lines()
            .filter_map(|line| {
                let (name, fields) = line.strip_prefix("cmdstat_")?.split_once(':')?;
                let field = |key: &str| {
                    fields
                        .split(',')
                        .find_map(|f| f.strip_prefix(key)?.strip_prefix('='))
                };
                Some((
                    name.to_uppercase(),
                    field("calls")?.parse().ok()?,
                    field("usec")?.parse().ok()?,
                ))
            })
            .collect();
        stats.sort_by(|a, b| b.2.total_cmp(&a.2));
        stats
    }

    pub fn flush(&self) {
        let () = redis::cmd("FLUSHDB")
            .query(&mut self.conn().expect("connect"))
            .expect("flushdb");
    }

    /// The calls over 1 ms since the last call (and resets the log): tagbust's (its keys
    /// start with `tbbench:`), the baseline's `UNLINK`s, and the peer's (anything else).
    pub fn slowlog(&self) -> Slow {
        let mut conn = self.conn().expect("connect");
        let entries: Vec<redis::Value> = redis::cmd("SLOWLOG")
            .arg("GET")
            .arg(-1)
            .query(&mut conn)
            .expect("slowlog");
        let () = redis::cmd("SLOWLOG")
            .arg("RESET")
            .query(&mut conn)
            .expect("slowlog reset");
        let mut slow = Slow::default();
        for entry in entries {
            let redis::Value::Array(fields) = entry else {
                continue;
            };
            let micros: i64 = fields
                .get(2)
                .and_then(|v| redis::from_redis_value(v.clone()).ok())
                .unwrap_or(0);
            let args: Vec<String> = fields
                .get(3)
                .and_then(|v| redis::from_redis_value(v.clone()).ok())
                .unwrap_or_default();
            let shown: Vec<&str> = args.iter().take(6).map(String::as_str).collect();
            let line = format!("{micros} µs: {}", shown.join(" "));
            let ours = args.iter().any(|a| a.starts_with("tbbench:"));
            if ours
                && args
                    .first()
                    .is_some_and(|c| c.eq_ignore_ascii_case("UNLINK"))
            {
                // The baseline's own multi-key UNLINK.
                slow.baseline.push(line);
            } else if ours {
                slow.longest_ours = slow.longest_ours.max(micros);
                slow.ours.push(line);
            } else {
                slow.peer += 1;
            }
        }
        slow
    }
}

impl Drop for Private {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What `SLOWLOG` held.
#[derive(Default)]
pub struct Slow {
    /// tagbust's calls (scripts, the sweeper's scans).
    pub ours: Vec<String>,
    /// The bench's multi-key `UNLINK` baseline.
    pub baseline: Vec<String>,
    pub longest_ours: i64,
    pub peer: usize,
}

/// Symfony Cache's `RedisTagAwareAdapter` through `php tests/peers/symfony.php`.
pub struct Symfony {
    script: PathBuf,
}

/// One run of the peer: entries written and keys invalidated per second, and the Redis CPU
/// each phase cost (µs, `INFO cpu` read by the script around each phase).
pub struct PeerRun {
    pub writes: f64,
    pub invalidations: f64,
    pub write_cpu_us: f64,
    pub invalidate_cpu_us: f64,
}

impl Symfony {
    /// The peer, when `php` can load Symfony Cache and phpredis.
    pub fn find() -> Option<Symfony> {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("peers/symfony.php");
        let ok = Command::new("php")
            .args(["-r", "require '/usr/share/php/Symfony/Component/Cache/autoload.php'; exit(class_exists('Redis') ? 0 : 1);"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Symfony { script })
    }

    pub fn run(&self, server: &Private, entries: usize, tags: usize, per_call: usize) -> PeerRun {
        let out = Command::new("php")
            .arg(&self.script)
            .args(["127.0.0.1", &server.port.to_string(), "0"])
            .args([entries, tags, per_call].map(|n| n.to_string()))
            .output()
            .expect("php");
        assert!(
            out.status.success(),
            "symfony.php failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("symfony.php JSON");
        let num = |k: &str| {
            v[k].as_f64()
                .unwrap_or_else(|| panic!("symfony.php: no {k}"))
        };
        assert_eq!(num("keys_left"), 0.0, "Symfony removed every entry");
        PeerRun {
            writes: entries as f64 / num("write_seconds"),
            invalidations: entries as f64 / num("invalidate_seconds"),
            write_cpu_us: num("write_redis_cpu_us"),
            invalidate_cpu_us: num("invalidate_redis_cpu_us"),
        }
    }
}
