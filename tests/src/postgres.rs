//! A private PostgreSQL cluster for one test: `initdb` into a scratch directory owned by the
//! `postgres` user (PostgreSQL refuses to run as root), `wal_level=logical`, listening on
//! 127.0.0.1 at the port given (tests use 24331–24339: below Linux's ephemeral range, 32768 and
//! up, where a client socket of another test could hold the port) with its Unix socket inside
//! the data directory; stopped by its postmaster's PID when dropped. `psql` drives it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The directory holding `initdb`, `pg_ctl` and `postgres`: `pg_config --bindir` when it
/// has them, else the newest `/usr/lib/postgresql/*/bin`, else whatever `PATH` finds.
pub fn bindir() -> Option<PathBuf> {
    let has = |dir: &Path| dir.join("initdb").exists() && dir.join("pg_ctl").exists();
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if has(&dir) {
            return Some(dir);
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|d| has(d))
        .collect();
    versions.sort_by_key(|d| {
        d.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    if let Some(dir) = versions.pop() {
        return Some(dir);
    }
    let out = Command::new("sh")
        .args(["-c", "command -v initdb"])
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    path.parent().filter(|d| has(d)).map(Path::to_path_buf)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `program args` as the `postgres` user when running as root.
fn as_postgres(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// A running private cluster.
pub struct TestPostgres {
    pub port: u16,
    pub data: PathBuf,
    pid: Option<u32>,
}

impl TestPostgres {
    /// A fresh cluster with `wal_level = logical` and the extra settings `-c` pairs in
    /// `settings` (e.g. `("wal_level", "replica")` to test a refusal).
    pub fn start(name: &str, port: u16, settings: &[(&str, &str)]) -> TestPostgres {
        let bin = bindir().expect(
            "these tests start their own PostgreSQL (initdb, pg_ctl); .ci/run installs Debian's postgresql",
        );
        let data = std::env::temp_dir().join(format!("tagbust-pg-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data);
        std::fs::create_dir_all(&data).expect("create the data directory");
        if is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&data)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "chown the data directory to postgres");
        }
        let out = as_postgres(&bin.join("initdb"))
            .args(["-D"])
            .arg(&data)
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"])
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c wal_level=logical \
             -c max_replication_slots=10 -c max_wal_senders=10 -c fsync=off \
             -c full_page_writes=off -c shared_buffers=64MB",
            data.display()
        );
        for (k, v) in settings {
            options.push_str(&format!(" -c {k}={v}"));
        }
        let log = data.join("server.log");
        let out = as_postgres(&bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(&log)
            .args(["-o", &options, "-w", "-t", "60", "start"])
            .stdout(Stdio::null())
            .output()
            .expect("run pg_ctl");
        assert!(
            out.status.success(),
            "pg_ctl start: {} {}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        let pid = std::fs::read_to_string(data.join("postmaster.pid"))
            .ok()
            .and_then(|t| t.lines().next().and_then(|l| l.trim().parse().ok()));
        assert!(pid.is_some(), "no postmaster.pid");
        TestPostgres { port, data, pid }
    }

    /// Runs SQL through `psql` (stop on the first error); its unaligned, tuples-only output.
    pub fn psql(&self, sql: &str) -> String {
        self.try_psql(sql)
            .unwrap_or_else(|e| panic!("psql: {e}\nSQL: {}", &sql[..sql.len().min(400)]))
    }

    pub fn try_psql(&self, sql: &str) -> Result<String, String> {
        use std::io::Write;
        let mut child = self.psql_command().spawn().map_err(|e| e.to_string())?;
        child
            .stdin
            .take()
            .ok_or("no stdin")?
            .write_all(sql.as_bytes())
            .map_err(|e| e.to_string())?;
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// `psql` reading SQL from its standard input (for a writer running beside the test).
    pub fn psql_command(&self) -> Command {
        let mut c = Command::new("psql");
        c.args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", "postgres", "-d", "postgres", "-X", "-q", "-A", "-t"])
            .args(["-v", "ON_ERROR_STOP=1", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// The server's current WAL position.
    pub fn current_lsn(&self) -> u64 {
        parse_lsn(&self.psql("SELECT pg_current_wal_lsn();"))
    }

    /// The slot's confirmed position (0 when the slot does not exist yet).
    pub fn confirmed(&self, slot: &str) -> u64 {
        let text = self.psql(&format!(
            "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '{slot}';"
        ));
        if text.is_empty() { 0 } else { parse_lsn(&text) }
    }

    /// Waits until the slot has confirmed everything committed so far: every invalidation
    /// of every transaction committed before this call is applied.
    pub fn sync(&self, slot: &str, limit: Duration) -> Duration {
        let target = self.current_lsn();
        let start = Instant::now();
        while self.confirmed(slot) < target {
            assert!(
                start.elapsed() < limit,
                "slot `{slot}` did not reach {target:X} within {limit:?} (at {:X})",
                self.confirmed(slot)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        start.elapsed()
    }

    /// Ends the walsender streaming `slot` (as an administrator or a failover would).
    pub fn terminate_walsender(&self, slot: &str) -> bool {
        self.psql(&format!(
            "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots \
             WHERE slot_name = '{slot}' AND active_pid IS NOT NULL;"
        )) == "t"
    }
}

/// `16/B374D848` as a number.
pub fn parse_lsn(text: &str) -> u64 {
    let (hi, lo) = text.trim().split_once('/').unwrap_or(("0", "0"));
    let hi = u64::from_str_radix(hi, 16).unwrap_or(0);
    let lo = u64::from_str_radix(lo, 16).unwrap_or(0);
    (hi << 32) | lo
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.take() {
            // SIGQUIT: immediate shutdown; then wait for the postmaster to be gone.
            let _ = Command::new("kill")
                .args(["-QUIT", &pid.to_string()])
                .status();
            let start = Instant::now();
            while Path::new(&format!("/proc/{pid}")).exists()
                && start.elapsed() < Duration::from_secs(10)
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            if Path::new(&format!("/proc/{pid}")).exists() {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
        let _ = std::fs::remove_dir_all(&self.data);
    }
}
