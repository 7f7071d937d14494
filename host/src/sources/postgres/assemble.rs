//! One committed transaction's row changes as write events: the rows of one table and
//! operation (and tenant) become one event, bulk when it names more than one row, split only
//! at the id cap. `TRUNCATE` is a bulk delete naming no ids and carrying the whole-resource
//! marker. The transaction's `tagbust` logical messages are its events' context.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::config::TenantFrom;
use super::decode::{Relation, Value};
use super::mapping::TableMap;
use crate::model::{EventLimits, FieldChange, Operation, WriteEvent};

/// The context key naming where an event came from (shown by explain): the commit's LSN and
/// transaction id.
pub const SOURCE_KEY: &str = tagbust_types::SOURCE_KEY;

/// Rows of one (tenant, resource, operation) in one transaction.
struct Group {
    tenant: String,
    resource: String,
    op: Operation,
    ids: Vec<String>,
    seen: HashSet<String>,
    changes: Vec<FieldChange>,
    distinct: HashSet<(String, Option<String>, Option<String>)>,
    /// Some row had no usable id, or the table was truncated: every row of the resource.
    whole: bool,
}

/// What a transaction did, up to its commit.
#[derive(Default)]
pub struct TxBuilder {
    groups: Vec<Group>,
    index: HashMap<(String, String, Operation), usize>,
    context: BTreeMap<String, String>,
    pub rows: u64,
    pub skipped: u64,
    pub truncates: u64,
}

impl TxBuilder {
    fn group(&mut self, tenant: &str, resource: &str, op: Operation) -> &mut Group {
        let key = (tenant.to_owned(), resource.to_owned(), op);
        let i = match self.index.get(&key) {
            Some(&i) => i,
            None => {
                self.groups.push(Group {
                    tenant: key.0.clone(),
                    resource: key.1.clone(),
                    op,
                    ids: Vec::new(),
                    seen: HashSet::new(),
                    changes: Vec::new(),
                    distinct: HashSet::new(),
                    whole: false,
                });
                self.index.insert(key, self.groups.len() - 1);
                self.groups.len() - 1
            }
        };
        &mut self.groups[i]
    }

    /// Adds one row change. `old`/`new` are the row images the server sent.
    pub fn row(
        &mut self,
        relation: &Relation,
        map: &TableMap,
        op: Operation,
        old: Option<&[Value]>,
        new: Option<&[Value]>,
        max_changes: usize,
    ) {
        // The row whose values name it: the new one, the old one for a delete.
        let Some(row) = new.or(old) else { return };
        let tenant = match &map.tenant {
            TenantFrom::Fixed(t) => t.clone(),
            TenantFrom::Schema => relation.schema.clone(),
            TenantFrom::Column(_) => match map.tenant_col.and_then(|i| row.get(i)) {
                Some(Value::Text(t)) => t.clone(),
                _ => {
                    self.skipped += 1;
                    tracing::warn!(table = %relation.table, "a row without a tenant value was skipped");
                    return;
                }
            },
        };
        let id = row_id(row, &map.id_cols);
        // An update that changed the key: the old id dies too.
        let old_id = match (op, old) {
            (Operation::Update, Some(old)) => row_id(old, &map.id_cols),
            _ => None,
        };
        let changes = changes(relation, op, old, new);
        self.rows += 1;
        let group = self.group(&tenant, &map.resource, op);
        match id {
            Some(id) => {
                for id in std::iter::once(id).chain(old_id) {
                    if group.seen.insert(id.clone()) {
                        group.ids.push(id);
                    }
                }
            }
            None => group.whole = true,
        }
        for c in changes {
            if group.distinct.len() < max_changes {
                if group
                    .distinct
                    .insert((c.field.clone(), c.old.clone(), c.new.clone()))
                {
                    group.changes.push(c);
                }
            } else {
                collapse(group, max_changes);
                if !group.changes.iter().any(|k| k.field == c.field)
                    && group.changes.len() < max_changes
                {
                    group.changes.push(FieldChange {
                        field: c.field,
                        old: None,
                        new: None,
                    });
                }
            }
        }
    }

    /// `TRUNCATE` of a mapped table: every row of the resource, for each of `tenants`.
    pub fn truncate(&mut self, tenants: &[String], resource: &str) {
        self.truncates += 1;
        for tenant in tenants {
            self.group(tenant, resource, Operation::Delete).whole = true;
        }
    }

    /// A `tagbust` logical message: a JSON object whose values become context (strings as
    /// they are, other values as JSON text). `Err` names the problem.
    pub fn message(&mut self, content: &[u8]) -> Result<(), String> {
        let value: serde_json::Value =
            serde_json::from_slice(content).map_err(|e| format!("not JSON: {e}"))?;
        let serde_json::Value::Object(map) = value else {
            return Err("not a JSON object".into());
        };
        for (k, v) in map {
            let text = match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            self.context.insert(k, text);
        }
        Ok(())
    }

    /// The events of the committed transaction, in the order their groups first appeared.
    pub fn finish(self, source: String, commit_ms: u64, limits: &EventLimits) -> Vec<WriteEvent> {
        let mut events = Vec::new();
        let mut context = self.context;
        context.insert(SOURCE_KEY.to_owned(), source);
        for g in self.groups {
            let mut base = WriteEvent::new(&g.tenant, &g.resource, g.op);
            base.context = context.clone();
            base.changes = g.changes;
            base.timestamp_ms = commit_ms;
            if g.whole {
                // Every row: one bulk event naming none, marked so a rule can tell it from
                // "these ids" (the ids, if any, are covered by it).
                base.operation = bulk(g.op);
                base.context.insert(
                    tagbust_types::SCOPE_KEY.to_owned(),
                    tagbust_types::SCOPE_WHOLE_RESOURCE.to_owned(),
                );
                events.push(base);
                continue;
            }
            if g.ids.len() == 1 {
                base.ids = g.ids;
                events.push(base);
                continue;
            }
            base.operation = bulk(g.op);
            for chunk in g.ids.chunks(limits.max_ids.max(1)) {
                let mut e = base.clone();
                e.ids = chunk.to_vec();
                events.push(e);
            }
        }
        events
    }
}

fn bulk(op: Operation) -> Operation {
    match op {
        Operation::Create => Operation::BulkCreate,
        Operation::Update => Operation::BulkUpdate,
        Operation::Delete => Operation::BulkDelete,
        Operation::Upsert => Operation::BulkUpsert,
        other => other,
    }
}

/// Past the cap of distinct changes: one entry per field, without values.
fn collapse(group: &mut Group, max_changes: usize) {
    if group
        .changes
        .iter()
        .all(|c| c.old.is_none() && c.new.is_none())
    {
        return;
    }
    let mut fields: Vec<String> = group.changes.drain(..).map(|c| c.field).collect();
    let mut seen = HashSet::new();
    fields.retain(|f| seen.insert(f.clone()));
    fields.truncate(max_changes);
    group.changes = fields
        .into_iter()
        .map(|field| FieldChange {
            field,
            old: None,
            new: None,
        })
        .collect();
}

/// The id of a row: its id columns' values joined with `:`; `None` when one is missing.
fn row_id(row: &[Value], cols: &[usize]) -> Option<String> {
    let mut id = String::new();
    for (n, &i) in cols.iter().enumerate() {
        let Some(Value::Text(v)) = row.get(i) else {
            return None;
        };
        if n > 0 {
            id.push(':');
        }
        id.push_str(v);
    }
    (!cols.is_empty()).then_some(id)
}

fn text(v: Option<&Value>) -> Option<String> {
    match v {
        Some(Value::Text(s)) => Some(s.clone()),
        _ => None,
    }
}

/// The changed columns. An insert lists its non-null columns (new values); a delete the old
/// row's columns the server sent (all under `REPLICA IDENTITY FULL`, else the key); an update
/// with the old row lists the columns whose value differs, without it every column of the
/// new row with no old value (unchanged TOASTed columns are never listed).
fn changes(
    relation: &Relation,
    op: Operation,
    old: Option<&[Value]>,
    new: Option<&[Value]>,
) -> Vec<FieldChange> {
    let mut out = Vec::new();
    for (i, col) in relation.columns.iter().enumerate() {
        let (o, n) = (old.and_then(|r| r.get(i)), new.and_then(|r| r.get(i)));
        let change = match op {
            Operation::Create => text(n).map(|v| (None, Some(v))),
            Operation::Delete => text(o).map(|v| (Some(v), None)),
            _ => match (o, n) {
                (_, Some(Value::Unchanged) | None) => None,
                (Some(Value::Unchanged) | None, n) => Some((None, text(n))),
                (Some(o), Some(n)) if o == n => None,
                (o, n) => Some((text(o), text(n))),
            },
        };
        if let Some((old, new)) = change {
            out.push(FieldChange {
                field: col.name.clone(),
                old,
                new,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::postgres::decode::Column;

    fn posts() -> (Relation, TableMap) {
        let relation = Relation {
            id: 1,
            schema: "public".into(),
            table: "posts".into(),
            identity: b'd',
            columns: vec![
                Column {
                    name: "id".into(),
                    key: true,
                },
                Column {
                    name: "title".into(),
                    key: false,
                },
            ],
        };
        let map = TableMap {
            resource: "posts".into(),
            tenant: TenantFrom::Fixed("acme".into()),
            id_cols: vec![0],
            tenant_col: None,
        };
        (relation, map)
    }

    fn key(id: &str) -> Vec<Value> {
        vec![Value::Text(id.into()), Value::Null]
    }

    #[test]
    fn rows_of_one_table_and_operation_are_one_bulk_event_split_at_the_cap() {
        let (r, map) = posts();
        let mut tx = TxBuilder::default();
        for i in 0..5 {
            let old = key(&i.to_string());
            tx.row(&r, &map, Operation::Delete, Some(&old), None, 1024);
        }
        let new = vec![Value::Text("9".into()), Value::Text("hello".into())];
        tx.row(&r, &map, Operation::Create, None, Some(&new), 1024);
        tx.message(br#"{"user_id":"u1","n":3}"#).expect("an object");
        let limits = EventLimits {
            max_ids: 3,
            ..EventLimits::default()
        };
        let events = tx.finish("postgres lsn=0/1 xid=7".into(), 0, &limits);
        let ops: Vec<_> = events.iter().map(|e| (e.operation, e.ids.len())).collect();
        assert_eq!(
            ops,
            [
                (Operation::BulkDelete, 3),
                (Operation::BulkDelete, 2),
                (Operation::Create, 1)
            ]
        );
        let create = &events[2];
        assert_eq!(create.changes[1].new.as_deref(), Some("hello"));
        assert_eq!(create.context["user_id"], "u1");
        assert_eq!(create.context["n"], "3");
        assert_eq!(create.context[SOURCE_KEY], "postgres lsn=0/1 xid=7");
        assert!(!tagbust_types::is_whole_resource(|k| create
            .context
            .get(k)
            .map(String::as_str)));
    }

    #[test]
    fn truncate_and_a_row_without_an_id_name_the_whole_resource() {
        let (r, map) = posts();
        let mut tx = TxBuilder::default();
        tx.truncate(&["acme".into()], "posts");
        let unnamed = vec![Value::Null, Value::Null];
        let mut other = map.clone();
        other.resource = "drafts".into();
        tx.row(&r, &other, Operation::Delete, Some(&unnamed), None, 1024);
        let events = tx.finish("s".into(), 0, &EventLimits::default());
        assert_eq!(events.len(), 2);
        for e in &events {
            assert_eq!(e.operation, Operation::BulkDelete);
            assert!(e.ids.is_empty());
            assert!(tagbust_types::is_whole_resource(|k| e
                .context
                .get(k)
                .map(String::as_str)));
        }
        assert!(tx_message_refuses_non_objects());
    }

    fn tx_message_refuses_non_objects() -> bool {
        let mut tx = TxBuilder::default();
        tx.message(b"[1]").is_err() && tx.message(b"not json").is_err()
    }

    #[test]
    fn distinct_changes_past_the_cap_collapse_to_field_names() {
        let (r, map) = posts();
        let mut tx = TxBuilder::default();
        for i in 0..10 {
            let row = vec![Value::Text(i.to_string()), Value::Text(format!("t{i}"))];
            tx.row(&r, &map, Operation::Create, None, Some(&row), 4);
        }
        let events = tx.finish("s".into(), 0, &EventLimits::default());
        let fields: Vec<_> = events[0]
            .changes
            .iter()
            .map(|c| (c.field.as_str(), c.new.is_none()))
            .collect();
        assert_eq!(fields, [("id", true), ("title", true)]);
    }
}
