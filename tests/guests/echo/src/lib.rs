//! Test guest: emits exactly the targets the event's `emit` context value asks for, so tests
//! can drive every strategy, cascade and dedupe case through the real pipeline.
//!
//! `emit` is a space-separated list of `kind=value[@strategy][+cascade]`, e.g.
//! `tag=user:1@lazy+cascade key=post:7 pattern=feed:*@batched`. `{id}` in a value is replaced
//! by each of the event's ids in turn (one target per id). The default strategy is immediate.

use tagbust_guest::{Context, Decision, Rule, RuleError, RuleInfo, Strategy, Target, WriteEvent};

pub struct Echo;

fn parse(spec: &str, id: Option<&str>) -> Result<Target, RuleError> {
    let (spec, cascade) = match spec.strip_suffix("+cascade") {
        Some(s) => (s, true),
        None => (spec, false),
    };
    let (spec, strategy) = match spec.rsplit_once('@') {
        Some((s, "immediate")) => (s, Strategy::Immediate),
        Some((s, "batched")) => (s, Strategy::Batched),
        Some((s, "lazy")) => (s, Strategy::Lazy),
        _ => (spec, Strategy::Immediate),
    };
    let (kind, value) = spec
        .split_once('=')
        .ok_or_else(|| RuleError::InvalidEvent(format!("`{spec}` is not kind=value")))?;
    let value = match id {
        Some(id) => value.replace("{id}", id),
        None => value.to_owned(),
    };
    let target = match kind {
        "tag" => Target::tag(value),
        "key" => Target::key(value),
        "pattern" => Target::pattern(value),
        other => return Err(RuleError::InvalidEvent(format!("unknown kind `{other}`"))),
    };
    let target = target.strategy(strategy);
    Ok(if cascade { target.cascade() } else { target })
}

impl Rule for Echo {
    fn info() -> RuleInfo {
        RuleInfo::new("echo", "1.0.0")
    }

    fn init(_: &Context) -> Result<Self, RuleError> {
        Ok(Echo)
    }

    fn evaluate(&self, event: &WriteEvent, _: &Context) -> Result<Decision, RuleError> {
        let mut decision = Decision::new();
        for spec in event.context("emit").unwrap_or("").split_whitespace() {
            if spec.contains("{id}") {
                for id in &event.ids {
                    decision.add(parse(spec, Some(id))?);
                }
            } else {
                decision.add(parse(spec, None)?);
            }
        }
        Ok(decision)
    }
}

tagbust_guest::export_rule!(Echo);
