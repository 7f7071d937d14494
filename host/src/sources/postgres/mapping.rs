//! Which tables become events, and how: the Relation messages the server sends (before a
//! relation's first change in each session, and again when it changes) resolved against the
//! configured tables and the primary keys read at start.

use std::collections::HashMap;

use super::config::{PgConfig, PgError, TableConfig, TenantFrom};
use super::decode::Relation;

/// How the rows of one relation become events.
#[derive(Debug, Clone)]
pub struct TableMap {
    pub resource: String,
    pub tenant: TenantFrom,
    /// Positions of the id columns in the row.
    pub id_cols: Vec<usize>,
    /// Position of the tenant column, for [`TenantFrom::Column`].
    pub tenant_col: Option<usize>,
}

/// The relations of a session, by the server's relation id.
pub struct Mapper {
    tables: Vec<TableConfig>,
    tenant: TenantFrom,
    qualified: bool,
    /// `(schema, table)` → primary key columns, in key order.
    primary_keys: HashMap<(String, String), Vec<String>>,
    relations: HashMap<u32, (Relation, Option<TableMap>)>,
}

impl Mapper {
    pub fn new(config: &PgConfig, primary_keys: HashMap<(String, String), Vec<String>>) -> Self {
        Mapper {
            tables: config.tables.clone(),
            tenant: config.tenant.clone(),
            qualified: config.qualified,
            primary_keys,
            relations: HashMap::new(),
        }
    }

    /// Records a Relation message. `Err` when the configuration names a column the table
    /// does not have (nothing could map its rows).
    pub fn relation(&mut self, relation: Relation) -> Result<(), PgError> {
        let map = self.resolve(&relation)?;
        self.relations.insert(relation.id, (relation, map));
        Ok(())
    }

    /// The relation and its mapping (`None`: not a mapped table); `None` for an id no
    /// Relation message announced.
    pub fn get(&self, id: u32) -> Option<(&Relation, Option<&TableMap>)> {
        self.relations.get(&id).map(|(r, m)| (r, m.as_ref()))
    }

    fn resolve(&self, r: &Relation) -> Result<Option<TableMap>, PgError> {
        let key = (r.schema.clone(), r.table.clone());
        let found = self
            .tables
            .iter()
            .enumerate()
            .find(|(_, t)| t.qualified_name() == key);
        let (index, table) = match found {
            Some((i, t)) => (Some(i), Some(t)),
            None if self.tables.is_empty() => (None, None),
            None => return Ok(None),
        };
        let key_name = |what: &str| match index {
            Some(i) => format!("tables[{i}].{what}"),
            None => format!("tenant ({}.{})", r.schema, r.table),
        };
        let position = |name: &str, what: &str| {
            r.columns
                .iter()
                .position(|c| c.name == name)
                .ok_or_else(|| PgError::Setting {
                    key: key_name(what),
                    problem: format!("table {}.{} has no column `{name}`", r.schema, r.table),
                })
        };
        let id_names: Vec<String> = match table.map(|t| &t.ids) {
            Some(ids) if !ids.is_empty() => ids.clone(),
            _ => match self.primary_keys.get(&key) {
                Some(pk) => pk.clone(),
                None => r
                    .columns
                    .iter()
                    .filter(|c| c.key)
                    .map(|c| c.name.clone())
                    .collect(),
            },
        };
        let mut id_cols = Vec::with_capacity(id_names.len());
        for name in &id_names {
            id_cols.push(position(name, "ids")?);
        }
        let tenant = table
            .and_then(|t| t.tenant.clone())
            .unwrap_or_else(|| self.tenant.clone());
        let tenant_col = match &tenant {
            TenantFrom::Column(c) => Some(position(c, "tenant_column")?),
            _ => None,
        };
        let resource = match table.and_then(|t| t.resource.clone()) {
            Some(resource) => resource,
            None if self.qualified => format!("{}.{}", r.schema, r.table),
            None => r.table.clone(),
        };
        if id_cols.is_empty() {
            tracing::warn!(
                table = %format!("{}.{}", r.schema, r.table),
                "no primary key, replica identity or `ids`: every change invalidates the whole resource"
            );
        }
        Ok(Some(TableMap {
            resource,
            tenant,
            id_cols,
            tenant_col,
        }))
    }
}
