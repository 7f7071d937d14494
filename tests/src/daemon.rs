//! `tagbust serve` as a real process for the tests, and a small HTTP/1.1 client over a
//! plain socket (requests close the connection; enough to drive and check every endpoint).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running `tagbust serve`; killed (SIGKILL) on drop if still running.
pub struct Daemon {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Daemon {
    /// Starts `tagbust serve ARGS` and waits for the line saying where it listens.
    pub fn start(args: &[&str]) -> Daemon {
        Daemon::try_start(args).unwrap_or_else(|e| panic!("tagbust serve {args:?}: {e}"))
    }

    /// Like [`Daemon::start`], returning the daemon's stderr as the error if it exits first.
    pub fn try_start(args: &[&str]) -> Result<Daemon, String> {
        Daemon::try_start_with(args, &[])
    }

    /// [`Daemon::start`] with extra environment variables (e.g. `TAGBUST_CONSUMER`).
    pub fn start_with(args: &[&str], env: &[(&str, &str)]) -> Daemon {
        Daemon::try_start_with(args, env).unwrap_or_else(|e| panic!("tagbust serve {args:?}: {e}"))
    }

    /// [`Daemon::try_start`] with extra environment variables.
    pub fn try_start_with_env(args: &[&str], env: &[(&str, &str)]) -> Result<Daemon, String> {
        Daemon::try_start_with(args, env)
    }

    fn try_start_with(args: &[&str], env: &[(&str, &str)]) -> Result<Daemon, String> {
        let mut child = Command::new(crate::tagbust_bin())
            .arg("serve")
            .args(args)
            .envs(env.iter().copied())
            .env("TAGBUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| format!("reading stdout: {e}"))?;
        let Some(addr) = line
            .trim()
            .strip_prefix("tagbust serve: listening on http://")
        else {
            let _ = child.wait();
            let mut err = String::new();
            if let Some(mut stderr) = child.stderr.take() {
                let _ = stderr.read_to_string(&mut err);
            }
            return Err(err);
        };
        let addr = addr.parse().map_err(|e| format!("address {addr:?}: {e}"))?;
        Ok(Daemon { child, addr })
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> Response {
        request(self.addr, "GET", path, token, b"")
    }

    pub fn post(&self, path: &str, token: Option<&str>, body: &[u8]) -> Response {
        request(self.addr, "POST", path, token, body)
    }

    /// Sends `signal` (e.g. `libc`'s SIGTERM = 15) through `kill`.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{signal}");
    }

    /// Waits for the process to exit (up to `limit`); its exit code and stderr.
    pub fn wait(mut self, limit: Duration) -> (Option<i32>, String) {
        let start = std::time::Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                let mut err = String::new();
                if let Some(mut stderr) = self.child.stderr.take() {
                    let _ = stderr.read_to_string(&mut err);
                }
                return (status.code(), err);
            }
            assert!(
                start.elapsed() < limit,
                "the daemon did not exit within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Daemon {
    /// Kills the daemon and returns everything it wrote to stderr.
    pub fn wait_killed(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut err = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            let _ = stderr.read_to_string(&mut err);
        }
        err
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP response: status, headers (lower-case names) and body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One request on a fresh connection.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> Response {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("write");
    // A server refusing a huge body may close before reading it all.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Response {
        status,
        headers,
        body: body.to_owned(),
    }
}
