//! Conversions between the host's types and the generated WIT types, and validation of what a
//! guest hands back.

use crate::model::event::{Operation, WriteEvent};
use crate::model::failure::{RuleErrorKind, RuleFailure};
use crate::model::rule_info::RuleInfo;
use crate::model::target::{Strategy, Target, TargetKind};
use crate::model::text::truncate;
use crate::sandbox::bindings::wit;
use crate::sandbox::limits::{
    MAX_DESCRIPTION, MAX_ERROR_MESSAGE, MAX_RESOURCE_NAME, MAX_RESOURCES, MAX_RULE_NAME,
    MAX_RULE_VERSION,
};

pub(crate) fn operation_to_wit(op: Operation) -> wit::Operation {
    match op {
        Operation::Create => wit::Operation::Create,
        Operation::Update => wit::Operation::Update,
        Operation::Delete => wit::Operation::Delete,
        Operation::Upsert => wit::Operation::Upsert,
        Operation::BulkCreate => wit::Operation::BulkCreate,
        Operation::BulkUpdate => wit::Operation::BulkUpdate,
        Operation::BulkDelete => wit::Operation::BulkDelete,
        Operation::BulkUpsert => wit::Operation::BulkUpsert,
    }
}

fn operation_from_wit(op: wit::Operation) -> Operation {
    match op {
        wit::Operation::Create => Operation::Create,
        wit::Operation::Update => Operation::Update,
        wit::Operation::Delete => Operation::Delete,
        wit::Operation::Upsert => Operation::Upsert,
        wit::Operation::BulkCreate => Operation::BulkCreate,
        wit::Operation::BulkUpdate => Operation::BulkUpdate,
        wit::Operation::BulkDelete => Operation::BulkDelete,
        wit::Operation::BulkUpsert => Operation::BulkUpsert,
    }
}

fn strategy_from_wit(s: wit::Strategy) -> Strategy {
    match s {
        wit::Strategy::Immediate => Strategy::Immediate,
        wit::Strategy::Batched => Strategy::Batched,
        wit::Strategy::Lazy => Strategy::Lazy,
    }
}

pub(crate) fn event_to_wit(e: &WriteEvent) -> wit::WriteEvent {
    wit::WriteEvent {
        tenant: e.tenant.clone(),
        resource: e.resource.clone(),
        operation: operation_to_wit(e.operation),
        ids: e.ids.clone(),
        changes: e
            .changes
            .iter()
            .map(|c| wit::FieldChange {
                field: c.field.clone(),
                old: c.old.clone(),
                new: c.new.clone(),
            })
            .collect(),
        context: e
            .context
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        transaction: e.transaction.clone(),
        timestamp_ms: e.timestamp_ms,
    }
}

/// Checks a guest's `describe()` answer before the host trusts it.
pub(crate) fn validate_info(info: &wit::RuleInfo) -> Result<(), String> {
    let name_ok = |s: &str| {
        !s.is_empty()
            && s.len() <= MAX_RULE_NAME
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    if !name_ok(&info.name) {
        return Err(format!(
            "name {:?} must be 1-{MAX_RULE_NAME} characters of [A-Za-z0-9._-]",
            truncate(&info.name, 64)
        ));
    }
    if info.version.is_empty() || info.version.len() > MAX_RULE_VERSION {
        return Err(format!("version must be 1-{MAX_RULE_VERSION} characters"));
    }
    if info.resources.len() > MAX_RESOURCES
        || info
            .resources
            .iter()
            .any(|r| r.is_empty() || r.len() > MAX_RESOURCE_NAME)
    {
        return Err(format!(
            "resources must be at most {MAX_RESOURCES} names of 1-{MAX_RESOURCE_NAME} characters"
        ));
    }
    if info.description.len() > MAX_DESCRIPTION {
        return Err(format!(
            "description must be at most {MAX_DESCRIPTION} bytes"
        ));
    }
    Ok(())
}

pub(crate) fn info_from_wit(info: wit::RuleInfo) -> RuleInfo {
    let mut operations: Vec<Operation> = info
        .operations
        .into_iter()
        .map(operation_from_wit)
        .collect();
    operations.sort();
    operations.dedup();
    RuleInfo {
        name: info.name,
        version: info.version,
        priority: info.priority,
        resources: info.resources,
        operations,
        default_strategy: strategy_from_wit(info.default_strategy),
        description: info.description,
    }
}

/// Turns one guest decision into host targets, enforcing the per-decision caps.
pub(crate) fn decision_from_wit(
    decision: Result<Vec<wit::Target>, wit::RuleError>,
    max_targets: usize,
    max_bytes: usize,
) -> Result<Vec<Target>, RuleFailure> {
    let targets = match decision {
        Ok(targets) => targets,
        Err(e) => {
            let (kind, message) = match e {
                wit::RuleError::InvalidEvent(m) => (RuleErrorKind::InvalidEvent, m),
                wit::RuleError::Config(m) => (RuleErrorKind::Config, m),
                wit::RuleError::Other(m) => (RuleErrorKind::Other, m),
            };
            return Err(RuleFailure::Rule {
                kind,
                message: truncate(&message, MAX_ERROR_MESSAGE),
            });
        }
    };
    if targets.len() > max_targets {
        return Err(RuleFailure::OutputTooLarge {
            what: "targets",
            actual: targets.len() as u64,
            limit: max_targets as u64,
        });
    }
    let bytes: usize = targets.iter().map(|t| t.value.len()).sum();
    if bytes > max_bytes {
        return Err(RuleFailure::OutputTooLarge {
            what: "bytes",
            actual: bytes as u64,
            limit: max_bytes as u64,
        });
    }
    targets
        .into_iter()
        .map(|t| {
            if t.value.is_empty() {
                return Err(RuleFailure::InvalidOutput {
                    detail: "a target has an empty value".to_owned(),
                });
            }
            Ok(Target {
                kind: match t.kind {
                    wit::TargetKind::Tag => TargetKind::Tag,
                    wit::TargetKind::Key => TargetKind::Key,
                    wit::TargetKind::Pattern => TargetKind::Pattern,
                },
                value: t.value,
                strategy: strategy_from_wit(t.strategy),
                cascade: t.cascade,
            })
        })
        .collect()
}
