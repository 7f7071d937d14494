//! `--record PATH --sample-rate R`: a sample of the live events accepted over HTTP, one JSON
//! object per line, for `tagbust diff` to replay against a new rule version. Bounded: past
//! `--record-max-bytes` the file rotates to `PATH.1` (one generation kept), so recording can
//! stay on in production. Writing never blocks a request: lines go through a bounded channel
//! to one writer task, and a full channel drops the sample (counted), never the event.

use std::io::Write;
use std::path::PathBuf;

use tagbust::WriteEvent;
use tokio::sync::mpsc;

/// Lines waiting for the writer; past this, samples are dropped.
const QUEUE: usize = 4096;

#[derive(Clone)]
pub struct Recorder {
    rate: f64,
    tx: mpsc::Sender<String>,
}

impl Recorder {
    /// Starts the writer task; `rate` is the fraction of events kept (0–1).
    pub fn start(path: PathBuf, rate: f64, max_bytes: u64) -> anyhow::Result<Recorder> {
        if !(rate > 0.0 && rate <= 1.0) {
            anyhow::bail!("`--sample-rate`: {rate} is not in (0, 1]");
        }
        let mut file = open(&path)?;
        let mut written = file.metadata().map(|m| m.len()).unwrap_or(0);
        let (tx, mut rx) = mpsc::channel::<String>(QUEUE);
        tokio::task::spawn_blocking(move || {
            while let Some(line) = rx.blocking_recv() {
                if written + line.len() as u64 > max_bytes {
                    let mut rotated = path.clone().into_os_string();
                    rotated.push(".1");
                    if let Err(e) = std::fs::rename(&path, &rotated).and_then(|()| {
                        file = open(&path).map_err(std::io::Error::other)?;
                        Ok(())
                    }) {
                        tracing::warn!(error = %e, "cannot rotate the recording; stopping it");
                        return;
                    }
                    written = 0;
                }
                if let Err(e) = file.write_all(line.as_bytes()) {
                    tracing::warn!(error = %e, "cannot write the recording; stopping it");
                    return;
                }
                written += line.len() as u64;
            }
        });
        Ok(Recorder { rate, tx })
    }

    /// Samples `events` (each kept with probability `rate`).
    pub fn offer(&self, events: &[WriteEvent]) {
        for event in events {
            if self.rate < 1.0 && fastrand::f64() >= self.rate {
                continue;
            }
            let Ok(mut line) = serde_json::to_string(event) else {
                continue;
            };
            line.push('\n');
            if self.tx.try_send(line).is_err() {
                metrics::counter!("tagbust_record_dropped_total").increment(1);
            } else {
                metrics::counter!("tagbust_recorded_events_total").increment(1);
            }
        }
    }
}

fn open(path: &PathBuf) -> anyhow::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| anyhow::anyhow!("{}: cannot open the recording: {e}", path.display()))
}
