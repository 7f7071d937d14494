//! A small, explicit benchmark harness: medians of repeated samples, with the cases being
//! compared measured interleaved (A, B, A, B, …) so drift on a noisy machine hits both alike.

use std::time::{Duration, Instant};

use tagbust::{FieldChange, Operation, WriteEvent};

/// Median and spread of one case, per operation.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    pub median: Duration,
    pub p10: Duration,
    pub p90: Duration,
}

impl Stats {
    pub fn nanos(&self) -> f64 {
        self.median.as_secs_f64() * 1e9
    }
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    Stats {
        median: at(0.5),
        p10: at(0.1),
        p90: at(0.9),
    }
}

/// Measures each case `samples` times, interleaved; each sample runs `iters` operations and
/// records the time per operation. A short warm-up runs first.
pub fn compare(samples: usize, iters: u32, cases: &mut [&mut dyn FnMut()]) -> Vec<Stats> {
    for case in cases.iter_mut() {
        for _ in 0..iters.min(10) {
            case();
        }
    }
    let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(samples); cases.len()];
    for _ in 0..samples {
        for (i, case) in cases.iter_mut().enumerate() {
            let start = Instant::now();
            for _ in 0..iters {
                case();
            }
            times[i].push(start.elapsed() / iters);
        }
    }
    times.into_iter().map(stats).collect()
}

/// Formats a duration in the unit that suits it.
pub fn human(d: Duration) -> String {
    let ns = d.as_secs_f64() * 1e9;
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{:.2} ms", ns / 1e6)
    }
}

/// One row: name, median, and the p10–p90 spread.
pub fn row(name: &str, s: &Stats) -> String {
    format!(
        "{name:<44} median {:>10}   (p10 {:>10}, p90 {:>10})",
        human(s.median),
        human(s.p10),
        human(s.p90)
    )
}

/// The median of rates or ratios measured in several samples.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Post `i` of `tenant` becomes published: `published-feeds` answers with three targets.
pub fn publish(tenant: &str, i: usize) -> WriteEvent {
    let mut e = WriteEvent::new(tenant, "posts", Operation::Update);
    e.ids = vec![i.to_string()];
    e.context.insert("author_id".into(), (i % 100).to_string());
    e.changes.push(FieldChange {
        field: "status".into(),
        old: Some("draft".into()),
        new: Some("published".into()),
    });
    e
}

/// Appends a custom section so the bytes (and their sha256) differ but the component does not:
/// a load that no compile cache can answer.
pub fn unique_copy(bytes: &[u8], n: u32) -> Vec<u8> {
    let name = b"bench";
    let payload = n.to_le_bytes();
    let mut out = bytes.to_vec();
    out.push(0); // custom section id
    out.push((1 + name.len() + payload.len()) as u8);
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.extend_from_slice(&payload);
    out
}
