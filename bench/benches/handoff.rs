//! What handing a submission's evaluation to tokio's blocking pool costs, as the host does for
//! every submission (`spawn_blocking`), against doing the same work inline: a round trip with
//! 256 strings moved in, on a current-thread runtime like the pipeline bench's. Samples
//! interleaved; the handoff is the difference of the two medians.
//!
//! Run: `cargo bench --locked -p tagbust-bench --bench handoff`, once as is and once under
//! `taskset -c 0`: on one core the pool's thread runs where the runtime just parked; on two,
//! it wakes on the other core, and waking an idle virtual CPU is what costs.

use std::hint::black_box;
use std::time::Instant;

use tagbust_tests::bench::median;

const ROUNDS: usize = 2_000;

fn batch(i: usize) -> Vec<String> {
    (0..256).map(|j| format!("{i}:{j}")).collect()
}

fn work(v: Vec<String>) -> usize {
    v.iter().map(String::len).sum()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let samples = if std::env::var_os("TAGBUST_BENCH_QUICK").is_some() {
        3
    } else {
        11
    };
    let (mut handed, mut inline) = (Vec::new(), Vec::new());
    for _ in 0..samples {
        let start = Instant::now();
        runtime.block_on(async {
            for i in 0..ROUNDS {
                let v = batch(i);
                let n = tokio::task::spawn_blocking(move || work(v))
                    .await
                    .expect("blocking task");
                black_box(n);
            }
        });
        handed.push(start.elapsed().as_secs_f64() / ROUNDS as f64 * 1e6);
        let start = Instant::now();
        for i in 0..ROUNDS {
            black_box(work(batch(i)));
        }
        inline.push(start.elapsed().as_secs_f64() / ROUNDS as f64 * 1e6);
    }
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let (h, i) = (median(handed), median(inline));
    println!(
        "blocking-pool handoff, {cores} core(s) available, {ROUNDS} round trips x {samples} samples"
    );
    println!("  spawn_blocking round trip with the work   median {h:>8.1} µs");
    println!("  the same work inline                      median {i:>8.1} µs");
    println!(
        "  the handoff                                      {:>8.1} µs",
        h - i
    );
}
