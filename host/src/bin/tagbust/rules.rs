//! Loading rules and their configuration from the command line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use tagbust::{BoundRule, Engine, Relationships, Rule, RuleConfig, RuleSet, TenantSetup, Tenants};

/// Expands each path: a `.wasm` file as is, a directory to its `.wasm` files (sorted).
pub fn component_paths(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path)
            .with_context(|| format!("{}: cannot read rule path", path.display()))?;
        if meta.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("{}: cannot list directory", path.display()))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
                .collect();
            if found.is_empty() {
                bail!(
                    "{}: no .wasm rule components in this directory",
                    path.display()
                );
            }
            found.sort();
            out.extend(found);
        } else {
            out.push(path.clone());
        }
    }
    Ok(out)
}

/// `RULE=FILE` (every tenant) or `RULE@TENANT=FILE` (one tenant): FILE holds a JSON object.
#[derive(Clone)]
pub struct ConfigArg {
    pub rule: String,
    pub tenant: Option<String>,
    pub file: PathBuf,
}

pub fn parse_config_arg(s: &str) -> Result<ConfigArg, String> {
    let (target, file) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}`: expected RULE=FILE or RULE@TENANT=FILE"))?;
    let (rule, tenant) = match target.split_once('@') {
        Some((r, t)) => (r, Some(t.to_owned())),
        None => (target, None),
    };
    if rule.is_empty() || file.is_empty() || tenant.as_deref() == Some("") {
        return Err(format!("`{s}`: expected RULE=FILE or RULE@TENANT=FILE"));
    }
    Ok(ConfigArg {
        rule: rule.to_owned(),
        tenant,
        file: PathBuf::from(file),
    })
}

fn read_config(path: &Path) -> anyhow::Result<RuleConfig> {
    let file = path.display();
    let bytes = std::fs::read(path).with_context(|| format!("{file}: cannot read config"))?;
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).with_context(|| format!("{file}: invalid JSON config"))?;
    match value {
        serde_json::Value::Object(map) => Ok(RuleConfig::from_json_object(&map)),
        _ => bail!("{file}: a rule config must be a JSON object"),
    }
}

/// Loads the rules at `paths` into one setup per tenant named by a config (and a default for
/// every other tenant), each with `relationships`.
pub fn load(
    engine: &Engine,
    paths: &[PathBuf],
    configs: &[ConfigArg],
    relationships: &Relationships,
) -> anyhow::Result<(Vec<Rule>, Tenants)> {
    let rules: Vec<Rule> = component_paths(paths)?
        .iter()
        .map(|p| engine.load_file(p))
        .collect::<Result<_, _>>()?;
    let mut global: BTreeMap<&str, RuleConfig> = BTreeMap::new();
    let mut per_tenant: BTreeMap<&str, BTreeMap<&str, RuleConfig>> = BTreeMap::new();
    for c in configs {
        if !rules.iter().any(|r| r.name() == c.rule) {
            let names: Vec<&str> = rules.iter().map(Rule::name).collect();
            bail!(
                "--config names rule `{}`, but the loaded rules are: {}",
                c.rule,
                names.join(", ")
            );
        }
        let config = read_config(&c.file)?;
        match &c.tenant {
            None => {
                global.insert(&c.rule, config);
            }
            Some(t) => {
                per_tenant.entry(t).or_default().insert(&c.rule, config);
            }
        }
    }
    let build = |overrides: Option<&BTreeMap<&str, RuleConfig>>| {
        RuleSet::new(
            rules
                .iter()
                .map(|r| {
                    let config = overrides
                        .and_then(|o| o.get(r.name()))
                        .or_else(|| global.get(r.name()))
                        .cloned()
                        .unwrap_or_default();
                    BoundRule::new(r.clone()).with_config(config)
                })
                .collect(),
        )
    };
    let setup = |rules: RuleSet| TenantSetup::new(rules).with_relationships(relationships.clone());
    let tenants = per_tenant
        .iter()
        .fold(Tenants::new(setup(build(None))), |tenants, (t, o)| {
            tenants.with_tenant(t, setup(build(Some(o))))
        });
    Ok((rules, tenants))
}
