//! `tagbust serve` with `TAGBUST_OTLP_ENDPOINT`: the host's spans reach an OTLP/HTTP
//! receiver. The receiver here is a plain socket on loopback that records each request and
//! answers 200, standing in for a collector: what arrives is the protobuf export, in which
//! span names are plain bytes.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tagbust_tests::components;
use tagbust_tests::daemon::Daemon;

/// What the receiver saw: each request's line and body.
type Seen = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// Accepts requests forever on its own thread; each is kept as (request line, body).
fn receiver() -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keep = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let mut length = 0usize;
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
                    break;
                }
                if let Some(v) = header.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            keep.lock()
                .expect("lock")
                .push((line.trim().to_owned(), body));
            let _ = reader
                .get_mut()
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (format!("http://{addr}/v1/traces"), seen)
}

#[test]
fn the_hosts_spans_are_exported_over_otlp() {
    let (endpoint, seen) = receiver();
    let d = Daemon::start_with(
        &["--rules", components::ECHO, "--listen", "127.0.0.1:0"],
        &[("TAGBUST_OTLP_ENDPOINT", endpoint.as_str())],
    );
    let event =
        br#"{"tenant":"acme","resource":"things","operation":"update","context":{"emit":"key=k"}}"#;
    assert_eq!(d.post("/v1/events", None, event).status, 200);
    d.signal("TERM");
    let (code, log) = d.wait(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{log}");
    let seen = seen.lock().expect("lock");
    let (line, body) = seen
        .iter()
        .find(|(line, _)| line.starts_with("POST /v1/traces"))
        .unwrap_or_else(|| panic!("no export reached the receiver: {seen:?}"));
    for name in ["tagbust.submit", "tagbust.evaluate", "tagbust.apply"] {
        assert!(
            body.windows(name.len()).any(|w| w == name.as_bytes()),
            "{line}: no `{name}` span among {} bytes",
            body.len()
        );
    }
}
