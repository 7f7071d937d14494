//! A private `redis-server` per test, on a port of the test's own, so that its command
//! counts are the test's alone; stopped by its PID when dropped.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A private server, stopped by its PID when dropped.
pub struct Server {
    port: u16,
    child: Child,
}

impl Server {
    pub fn start(port: u16) -> Server {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("this test starts its own redis-server ({e}); .ci/run installs it")
            });
        let server = Server { port, child };
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

    pub fn conn(&self) -> redis::RedisResult<redis::Connection> {
        let mut conn = redis::Client::open(self.url())?.get_connection()?;
        redis::cmd("PING").query::<String>(&mut conn)?;
        Ok(conn)
    }

    pub fn query<T: redis::FromRedisValue>(&self, cmd: &mut redis::Cmd) -> T {
        cmd.query(&mut self.conn().expect("connect"))
            .expect("query")
    }

    /// `EVALSHA` calls so far.
    pub fn script_calls(&self) -> u64 {
        self.calls("evalsha")
    }

    /// Calls of `command` so far, counting those scripts ran.
    pub fn calls(&self, command: &str) -> u64 {
        let info: String = self.query(redis::cmd("INFO").arg("commandstats"));
        let field = format!("cmdstat_{command}:calls=");
        info.lines()
            .find_map(|l| l.strip_prefix(field.as_str()))
            .and_then(|rest| rest.split(',').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    /// Every key with its TTL state (-1 none, 1 some) and content (sorted-set members without
    /// scores, which hold `now`; entries without their store time).
    pub fn dump(&self, prefix: &str) -> Vec<(String, i64, Vec<String>)> {
        let mut keys: Vec<String> = self.query(redis::cmd("KEYS").arg(format!("{prefix}:*")));
        keys.sort();
        keys.into_iter()
            .map(|k| {
                let kind: String = self.query(redis::cmd("TYPE").arg(&k));
                let ttl: i64 = self.query(redis::cmd("PTTL").arg(&k));
                let mut content: Vec<String> = match kind.as_str() {
                    "hash" => self.query(redis::cmd("HGETALL").arg(&k)),
                    "zset" => self.query(redis::cmd("ZRANGE").arg(&k).arg(0).arg(-1)),
                    "set" => self.query(redis::cmd("SMEMBERS").arg(&k)),
                    _ => vec![untimed(&self.query::<String>(redis::cmd("GET").arg(&k)))],
                };
                content.sort();
                let short = k.strip_prefix(prefix).unwrap_or(&k).to_owned();
                (short, ttl.signum(), content)
            })
            .collect()
    }
}

/// An entry without its store time and its inherited fields' times (see entry.lua).
pub fn untimed(entry: &str) -> String {
    let rest = entry.split_once(';').map_or(entry, |(_, rest)| rest);
    let mut out = String::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == 'i' {
            while chars.peek().is_some_and(char::is_ascii_digit) {
                chars.next();
            }
        }
    }
    out
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
