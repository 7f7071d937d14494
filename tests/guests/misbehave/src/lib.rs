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
