//! Settings of one PostgreSQL source, and why it could not start.

use std::time::Duration;

/// Where an event's tenant comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantFrom {
    /// The same tenant for every row.
    Fixed(String),
    /// The table's schema (one schema per tenant).
    Schema,
    /// A column of the row (its new value; its old value for a delete, which needs the
    /// column in the replica identity or `REPLICA IDENTITY FULL`).
    Column(String),
}

/// How one table's rows become events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableConfig {
    /// `schema.table`, or `table` for `public.table`.
    pub table: String,
    /// The event's resource. Default: the table's name (`schema.table` when the source's
    /// `qualified` is set).
    pub resource: Option<String>,
    /// Columns whose values make a row's id (joined with `:` when several). Default: the
    /// primary key, else the replica identity's columns.
    pub ids: Vec<String>,
    /// Default: the source's.
    pub tenant: Option<TenantFrom>,
}

impl TableConfig {
    pub fn new(table: &str) -> TableConfig {
        TableConfig {
            table: table.to_owned(),
            resource: None,
            ids: Vec::new(),
            tenant: None,
        }
    }

    /// `(schema, table)`.
    pub fn qualified_name(&self) -> (String, String) {
        match self.table.split_once('.') {
            Some((schema, table)) => (schema.to_owned(), table.to_owned()),
            None => ("public".to_owned(), self.table.clone()),
        }
    }
}

/// One logical replication source: a slot and a publication of one database.
#[derive(Debug, Clone)]
pub struct PgConfig {
    /// Host name, or a directory holding the server's Unix socket (starts with `/`).
    pub host: String,
    pub port: u16,
    /// A role with the `REPLICATION` attribute (and, to create the publication, owner of the
    /// tables).
    pub user: String,
    pub password: String,
    pub database: String,
    pub slot: String,
    pub publication: String,
    /// Create the slot and the publication (for `tables`, or every table when none is
    /// listed) on first start; otherwise refuse to start naming what is missing.
    pub create: bool,
    /// The tables that become events; empty: every table of the publication, with defaults.
    /// Rows of other tables are counted and skipped.
    pub tables: Vec<TableConfig>,
    /// The tenant of tables that do not say.
    pub tenant: TenantFrom,
    /// Resource names are `schema.table` instead of `table`.
    pub qualified: bool,
    /// Committed transactions submitted but not yet applied, past which reading waits.
    pub max_in_flight: usize,
    /// How often the confirmed position is reported to the server (it is also reported
    /// whenever the server asks).
    pub status_interval: Duration,
    /// First wait before reconnecting (doubles up to 30 s).
    pub backoff: Duration,
    /// On shutdown, how long to wait for submitted transactions to be applied and
    /// acknowledged.
    pub drain_timeout: Duration,
}

impl PgConfig {
    /// A source with the defaults: port 5432, tenant `default`, no creation.
    pub fn new(host: &str, user: &str, database: &str, slot: &str, publication: &str) -> Self {
        PgConfig {
            host: host.to_owned(),
            port: 5432,
            user: user.to_owned(),
            password: String::new(),
            database: database.to_owned(),
            slot: slot.to_owned(),
            publication: publication.to_owned(),
            create: false,
            tables: Vec::new(),
            tenant: TenantFrom::Fixed("default".to_owned()),
            qualified: false,
            max_in_flight: 10_000,
            status_interval: Duration::from_secs(1),
            backoff: Duration::from_millis(200),
            drain_timeout: Duration::from_secs(10),
        }
    }

    /// Refuses settings that cannot work, naming the key.
    pub fn check(&self) -> Result<(), PgError> {
        let bad = |key: &str, problem: &str| {
            Err(PgError::Setting {
                key: key.to_owned(),
                problem: problem.to_owned(),
            })
        };
        let ident = |s: &str| {
            !s.is_empty()
                && s.len() <= 63
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        };
        if !ident(&self.slot) {
            return bad("slot", "must be 1-63 of a-z, 0-9 and _");
        }
        if !ident(&self.publication) {
            return bad("publication", "must be 1-63 of a-z, 0-9 and _");
        }
        if self.max_in_flight == 0 {
            return bad("max_in_flight", "must be more than 0");
        }
        for (i, t) in self.tables.iter().enumerate() {
            let (schema, table) = t.qualified_name();
            if !ident(&schema) || !ident(&table) {
                return bad(
                    &format!("tables[{i}].table"),
                    "must be `schema.table` or `table`, each 1-63 of a-z, 0-9 and _",
                );
            }
            if self.tables[..i]
                .iter()
                .any(|o| o.qualified_name() == (schema.clone(), table.clone()))
            {
                return bad(&format!("tables[{i}].table"), "listed twice");
            }
        }
        Ok(())
    }
}

/// Why a source stopped or could not start. Connection failures are not errors: the source
/// waits and reconnects.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("`{key}`: {problem}")]
    Setting { key: String, problem: String },
    #[error(
        "the server's `wal_level` is `{found}`, not `logical`: set `wal_level = logical` in postgresql.conf and restart it"
    )]
    WalLevel { found: String },
    #[error(
        "publication `{publication}` does not exist: `CREATE PUBLICATION {publication} FOR TABLE …`, or set `create = true`"
    )]
    NoPublication { publication: String },
    #[error(
        "replication slot `{slot}` does not exist: `SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput')`, or set `create = true`"
    )]
    NoSlot { slot: String },
    #[error("replication slot `{slot}` uses plugin `{plugin}`, not `pgoutput`")]
    WrongPlugin { slot: String, plugin: String },
    #[error("table `{table}` is not in publication `{publication}`")]
    NotPublished { table: String, publication: String },
    #[error(
        "role `{user}` may not {what}: {message} (it needs the REPLICATION attribute; creating the publication needs ownership of the tables)"
    )]
    Permission {
        user: String,
        what: String,
        message: String,
    },
    #[error("{what}: {message}")]
    Server { what: String, message: String },
}
