//! Test guest that misbehaves on purpose; the event's `resource` picks how:
//!
//! | resource   | behaviour                                                   |
//! |------------|-------------------------------------------------------------|
//! | `loop`     | spins forever without calling the host (only the deadline   |
//! |            | can stop it: no host call to refuse)                        |
//! | `loop-log` | loops forever calling the host's `log` (dropped past the    |
//! |            | cap; the deadline must still stop it)                       |
//! | `alloc`    | grows memory without bound (the memory cap must stop it)    |
//! | `recurse`  | recurses without bound (overflows Rust's shadow stack)      |
//! | `panic`    | panics with a message                                       |
//! | `flood`    | returns 5,000 targets for one event                         |
//! | `giant`    | returns one 1 MiB target                                    |
//! | `huge-tag` | returns one 20 MiB target (past the per-call transfer cap)  |
//! | `huge-log` | writes one 4 MiB log message                                |
//! | `measure`  | returns `bytes:<n>`, the total length of the event's ids    |
//! | `empty`    | returns a target with an empty value                        |
//! | `chatty`   | writes 1,000 log records                                    |
//! | `error`    | returns a rule error                                        |
//! | `config`   | returns a tag per configured key, `key=value`               |
//! | `idle`     | returns nothing (measures the cost of the boundary alone)   |
//! | `sleep`    | sleeps 20 s in `std::thread::sleep` (a host call), then ok  |
//! | `sleep-forever` | sleeps 1 s at a time, forever                          |
//! | `poll-far` | `wasi:io/poll` on a clock an hour away (wasm only)          |
//! | `poll-ready` | `wasi:io/poll` on a clock already due, then ok (wasm only) |
//! | `flush-huge` | writes 64 MiB to stdout and flushes, then ok              |
//! | `stdin`    | reads stdin to its end, then ok                             |
//! | anything   | returns `ok:<id>` for each id                               |

use std::hint::black_box;

use tagbust_guest::{Context, Decision, Level, Rule, RuleError, RuleInfo, WriteEvent};

pub struct Misbehave;

#[expect(
    unconditional_recursion,
    reason = "the point: recursion without bound must be stopped by the host"
)]
fn recurse(depth: u64) -> u64 {
    let local = black_box([depth; 16]);
    black_box(recurse(depth + 1)) + local[3]
}

/// `wasi:io/poll` on a monotonic-clock pollable `nanos` from now: waits that long.
#[cfg(target_arch = "wasm32")]
fn poll_after(nanos: u64) {
    let pollable = wasip2::clocks::monotonic_clock::subscribe_duration(nanos);
    let ready = wasip2::io::poll::poll(&[&pollable]);
    black_box(ready);
}

#[cfg(not(target_arch = "wasm32"))]
fn poll_after(nanos: u64) {
    std::thread::sleep(std::time::Duration::from_nanos(nanos));
}

impl Rule for Misbehave {
    fn info() -> RuleInfo {
        RuleInfo::new("misbehave", "0.0.1").priority(-1)
    }

    fn init(_: &Context) -> Result<Self, RuleError> {
        Ok(Misbehave)
    }

    fn evaluate(&self, event: &WriteEvent, ctx: &Context) -> Result<Decision, RuleError> {
        match event.resource.as_str() {
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = black_box(n.wrapping_add(1));
                }
            }
            "loop-log" => {
                let mut n: u64 = 0;
                loop {
                    n = n.wrapping_add(1);
                    ctx.log(Level::Debug, "still looping", &[]);
                    black_box(n);
                }
            }
            "alloc" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(black_box(vec![1u8; 1 << 20]));
                }
            }
            "recurse" => Ok(Decision::new().tag(format!("{}", recurse(0)))),
            "panic" => panic!("rule exploded on purpose"),
            "flood" => Ok((0..5_000)
                .map(|i| tagbust_guest::Target::tag(format!("t{i}")))
                .collect()),
            "giant" => Ok(Decision::new().tag("x".repeat(1 << 20))),
            "huge-tag" => Ok(Decision::new().tag("x".repeat(20 << 20))),
            "huge-log" => {
                ctx.log(Level::Info, &"y".repeat(4 << 20), &[]);
                Ok(Decision::new().tag("logged"))
            }
            "measure" => {
                let bytes: usize = event.ids.iter().map(String::len).sum();
                Ok(Decision::new().tag(format!("bytes:{bytes}")))
            }
            "empty" => Ok(Decision::new().tag("")),
            "chatty" => {
                for i in 0..1000 {
                    ctx.log(Level::Info, "chatter", &[("i", &i.to_string())]);
                }
                Ok(Decision::new().tag("chatted"))
            }
            "idle" => Ok(Decision::new()),
            "sleep" => {
                std::thread::sleep(std::time::Duration::from_secs(20));
                Ok(Decision::new().tag("slept"))
            }
            "sleep-forever" => loop {
                std::thread::sleep(std::time::Duration::from_secs(1));
            },
            "poll-far" => {
                poll_after(3_600_000_000_000);
                Ok(Decision::new().tag("polled"))
            }
            "poll-ready" => {
                poll_after(0);
                Ok(Decision::new().tag("polled"))
            }
            "flush-huge" => {
                use std::io::Write;
                let mut out = std::io::stdout();
                let chunk = vec![b'x'; 1 << 20];
                for _ in 0..64 {
                    let _ = out.write_all(&chunk);
                }
                let _ = out.flush();
                Ok(Decision::new().tag("flushed"))
            }
            "stdin" => {
                use std::io::Read;
                let mut buf = Vec::new();
                let _ = std::io::stdin().read_to_end(&mut buf);
                Ok(Decision::new().tag(format!("stdin:{}", buf.len())))
            }
            "error" => Err(RuleError::InvalidEvent("this event is wrong".into())),
            "config" => Ok(ctx
                .config_keys()
                .into_iter()
                .map(|k| {
                    let v = ctx.config(&k).unwrap_or_default();
                    tagbust_guest::Target::tag(format!("{k}={v}"))
                })
                .collect()),
            _ => Ok(event
                .ids
                .iter()
                .map(|id| tagbust_guest::Target::tag(format!("ok:{id}")))
                .collect()),
        }
    }
}

tagbust_guest::export_rule!(Misbehave);
