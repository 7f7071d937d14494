//! `tagbust test`: run fixture cases through the host's own path (rules, confinement, failure
//! policy, cascade: `tagbust::pipeline::dry_run`) and compare what it would invalidate with
//! what each case expects.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, ValueEnum};
use tagbust::pipeline::{DryRun, dry_run};
use tagbust::{
    BoundRule, Engine, OpKind, Outcome, Rule, RuleConfig, RuleErrorKind, RuleFailure, RuleSet,
    Strategy, TenantSetup, Tenants,
};

use super::engine::CacheArgs;
use super::fixture::{
    self, Case, ExpectFailure, ExpectKind, ExpectTarget, Fixture, Match, RuleSetup,
};
use super::report;
use super::rules;

#[derive(Args)]
pub struct TestArgs {
    /// A rule component (.wasm) or a directory of them; repeat for more.
    #[arg(long = "rules", required = true)]
    rules: Vec<PathBuf>,
    /// Fixture files (.toml, .json), or directories of them.
    #[arg(required = true)]
    fixtures: Vec<PathBuf>,
    /// Output: text for people, junit (XML on standard output) for CI systems.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Junit,
}

/// What one fixture file gave: its cases' results, or why it could not be run.
pub struct FileResult {
    pub file: String,
    /// The fixture's `description`, if any.
    pub description: String,
    pub outcome: Result<Vec<CaseResult>, String>,
}

pub struct CaseResult {
    pub name: String,
    pub elapsed: Duration,
    /// Empty when the case passed; else the diff, one line each.
    pub problems: Vec<String>,
    /// What the host would invalidate, for context when the case fails.
    pub produced: Vec<String>,
}

/// Exit 0 when every case passed, 1 when a case failed, 2 when a fixture could not be read or
/// parsed (the others still run and are reported).
pub fn run(args: TestArgs, cache: &CacheArgs) -> anyhow::Result<ExitCode> {
    let files = fixture_paths(&args.fixtures)?;
    let engine = cache.engine()?;
    let rules: Vec<Rule> = rules::component_paths(&args.rules)?
        .iter()
        .map(|p| engine.load_file(p))
        .collect::<Result<_, _>>()?;
    let names: BTreeSet<String> = rules.iter().map(|r| r.name().to_owned()).collect();
    let results: Vec<FileResult> = files
        .iter()
        .map(|path| run_file(&engine, &rules, &names, path))
        .collect();
    match args.format {
        Format::Text => report::print_text(&rules, &results),
        Format::Junit => report::print_junit(&results)?,
    }
    let errors = results.iter().any(|f| f.outcome.is_err());
    let failed = results
        .iter()
        .filter_map(|f| f.outcome.as_ref().ok())
        .flatten()
        .any(|c| !c.problems.is_empty());
    Ok(match (errors, failed) {
        (true, _) => ExitCode::from(2),
        (false, true) => ExitCode::from(1),
        (false, false) => ExitCode::SUCCESS,
    })
}

/// Files as given; directories to their `.toml` and `.json` files (sorted).
fn fixture_paths(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path)
            .with_context(|| format!("{}: cannot read fixture path", path.display()))?;
        if !meta.is_dir() {
            out.push(path.clone());
            continue;
        }
        let mut found: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("{}: cannot list directory", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml" || x == "json"))
            .collect();
        anyhow::ensure!(
            !found.is_empty(),
            "{}: no .toml or .json fixtures in this directory",
            path.display()
        );
        found.sort();
        out.extend(found);
    }
    Ok(out)
}

fn run_file(engine: &Engine, rules: &[Rule], names: &BTreeSet<String>, path: &Path) -> FileResult {
    let file = path.display().to_string();
    let mut description = String::new();
    // A fixture is an input like an event file: capped before it is read.
    let cap = tagbust::EventLimits::default().max_input_bytes as u64;
    let outcome = std::fs::metadata(path)
        .map_err(|e| format!("{file}: cannot read: {e}"))
        .and_then(|m| match m.len() {
            size if size > cap => Err(format!("{file}: {size} bytes, more than {cap}")),
            _ => std::fs::read(path).map_err(|e| format!("{file}: cannot read: {e}")),
        })
        .and_then(|bytes| {
            String::from_utf8(bytes).map_err(|e| format!("{file}: not UTF-8 text: {e}"))
        })
        .and_then(|text| fixture::parse(&file, &text, names).map_err(|e| e.to_string()))
        .map(|fixture| {
            description.clone_from(&fixture.description);
            fixture
                .cases
                .iter()
                .map(|case| run_case(engine, rules, &fixture, case))
                .collect()
        });
    FileResult {
        file,
        description,
        outcome,
    }
}

fn run_case(engine: &Engine, rules: &[Rule], fixture: &Fixture, case: &Case) -> CaseResult {
    let start = Instant::now();
    let (problems, produced) = match tenants(engine, rules, fixture, case) {
        Ok(tenants) => {
            let run = dry_run(&tenants, case.events.clone());
            let got = produced(&run);
            let produced = got.iter().map(Got::describe).collect();
            (check(case, &run, &got), produced)
        }
        Err(e) => (vec![e], Vec::new()),
    };
    CaseResult {
        name: case.name.clone(),
        elapsed: start.elapsed(),
        problems,
        produced,
    }
}

/// The tenant the case runs as: the selected rules with the case's (else the file's) setup,
/// the file's relationships, and the other tenants (same setup) confinement knows of.
fn tenants(
    engine: &Engine,
    rules: &[Rule],
    fixture: &Fixture,
    case: &Case,
) -> Result<Tenants, String> {
    let selected = |r: &&Rule| {
        fixture
            .rules
            .as_ref()
            .is_none_or(|names| names.iter().any(|n| n.0 == r.name()))
    };
    let mut bound = Vec::new();
    for rule in rules.iter().filter(selected) {
        let key = fixture::RuleName(rule.name().to_owned());
        let setup = case.setup.get(&key).or(fixture.setup.get(&key));
        bound.push(bind(engine, rule, setup.cloned().unwrap_or_default())?);
    }
    let setup =
        TenantSetup::new(RuleSet::new(bound)).with_relationships(fixture.relationships.build());
    Ok(fixture
        .other_tenants
        .iter()
        .fold(Tenants::new(setup.clone()), |t, other| {
            t.with_tenant(other, setup.clone())
        }))
}

fn bind(engine: &Engine, rule: &Rule, setup: RuleSetup) -> Result<BoundRule, String> {
    let mut bound = BoundRule::new(rule.clone())
        .with_config(RuleConfig::from_json_object(&setup.config))
        .with_policy(setup.on_failure, setup.fallback);
    if let Some(p) = setup.priority {
        bound.priority = p;
    }
    let field = |f: &str, m: String| format!("setup of `{}`: field `{f}`: {m}", rule.name());
    if let Some(ms) = setup.deadline_ms {
        bound
            .limits
            .set_deadline_ms(ms)
            .map_err(|m| field("deadline_ms", m))?;
    }
    if let Some(mib) = setup.memory_mib {
        let max = engine.options().max_memory_bytes;
        bound
            .limits
            .set_memory_mib(mib, max)
            .map_err(|m| field("memory_mib", m))?;
    }
    Ok(bound)
}

/// One target the host would invalidate.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Got {
    kind: ExpectKind,
    value: String,
    strategy: Strategy,
    fallback: bool,
    via: Option<String>,
    rule: String,
}

impl Got {
    fn describe(&self) -> String {
        let mut s = format!(
            "{} {} ({}) ← {}",
            self.kind.as_str(),
            self.value,
            self.strategy.as_str(),
            self.rule
        );
        if self.fallback {
            s.push_str(" [fallback]");
        }
        if let Some(v) = &self.via {
            s.push_str(&format!(" [cascade via {v}]"));
        }
        s
    }
}

/// Every operation of every event of the run, as targets, once each.
fn produced(run: &DryRun) -> Vec<Got> {
    let mut got: Vec<Got> = run
        .events
        .iter()
        .flat_map(|e| &e.ops)
        .map(|op| Got {
            kind: match op.op.kind {
                OpKind::Tag | OpKind::TagVersion => ExpectKind::Tag,
                OpKind::Key => ExpectKind::Key,
                OpKind::Pattern => ExpectKind::Pattern,
                OpKind::Tenant => ExpectKind::Tenant,
            },
            value: match op.op.kind {
                OpKind::Tenant => "*".to_owned(),
                _ => op.op.value.clone(),
            },
            strategy: op.origin.strategy,
            fallback: op.origin.fallback,
            via: op.origin.cascaded_from.clone(),
            rule: op.origin.rule.to_string(),
        })
        .collect();
    got.sort();
    got.dedup();
    got
}

fn matches(e: &ExpectTarget, g: &Got) -> bool {
    e.kind == g.kind
        && e.value == g.value
        && e.strategy.is_none_or(|s| s == g.strategy)
        && e.fallback.is_none_or(|f| f == g.fallback)
        && e.via.as_ref().is_none_or(|v| Some(v) == g.via.as_ref())
        && e.rule.as_ref().is_none_or(|r| r.0 == g.rule)
}

fn describe_expected(e: &ExpectTarget) -> String {
    let mut s = format!("{} {}", e.kind.as_str(), e.value);
    if let Some(st) = e.strategy {
        s.push_str(&format!(" ({})", st.as_str()));
    }
    if let Some(r) = &e.rule {
        s.push_str(&format!(" ← {}", r.0));
    }
    if e.fallback == Some(true) {
        s.push_str(" [fallback]");
    }
    if let Some(v) = &e.via {
        s.push_str(&format!(" [cascade via {v}]"));
    }
    s
}

/// The diff between what the case expects and what the run did; empty when it passed.
fn check(case: &Case, run: &DryRun, got: &[Got]) -> Vec<String> {
    let mut problems = Vec::new();
    for e in &case.expect {
        if !got.iter().any(|g| matches(e, g)) {
            problems.push(format!("- expected: {}", describe_expected(e)));
        }
    }
    if case.mode == Match::Exact {
        for g in got {
            if !case.expect.iter().any(|e| matches(e, g)) {
                problems.push(format!("+ not expected: {}", g.describe()));
            }
        }
    }
    let failures: Vec<Failure> = run
        .events
        .iter()
        .flat_map(|e| &e.outcomes)
        .filter_map(|o| match &o.result {
            Outcome::Error { failure, message } => Some(Failure {
                rule: o.rule.name(),
                code: failure.code(),
                kind: match failure {
                    RuleFailure::Rule { kind, .. } => Some(*kind),
                    _ => None,
                },
                message,
            }),
            Outcome::Ok { .. } => None,
        })
        .collect();
    for ef in &case.failures {
        if !failures.iter().any(|f| f.matches(ef)) {
            let message = ef
                .message
                .as_deref()
                .map(|m| format!(" containing {m:?}"))
                .unwrap_or_default();
            problems.push(format!(
                "- expected failure: {} {}{message}",
                ef.rule.0, ef.code.0
            ));
        }
    }
    for f in &failures {
        if !case.failures.iter().any(|ef| f.matches(ef)) {
            problems.push(format!(
                "+ failure not expected: {} {}: {}",
                f.rule, f.code, f.message
            ));
        }
    }
    let rejected: Vec<String> = run
        .events
        .iter()
        .filter_map(|e| e.rejected.as_ref().map(ToString::to_string))
        .collect();
    match (case.rejected, rejected.is_empty()) {
        (true, true) => problems.push("- expected the event to be rejected; it was not".into()),
        (false, false) => problems.push(format!("+ rejected: {}", rejected.join("; "))),
        _ => {}
    }
    let confined: u64 = run.events.iter().map(|e| e.confinement_violations).sum();
    let wanted = case.confinement_violations.unwrap_or(0);
    if confined != wanted {
        problems.push(format!(
            "confinement violations: expected {wanted}, got {confined}"
        ));
    }
    problems
}

/// A rule's failure on one of the case's events.
struct Failure<'a> {
    rule: &'a str,
    code: &'static str,
    kind: Option<RuleErrorKind>,
    message: &'a str,
}

impl Failure<'_> {
    fn matches(&self, e: &ExpectFailure) -> bool {
        e.rule.0 == self.rule
            && e.code.0 == self.code
            && e.kind.is_none_or(|k| Some(k) == self.kind)
            && e.message
                .as_ref()
                .is_none_or(|m| self.message.contains(m.as_str()))
    }
}
