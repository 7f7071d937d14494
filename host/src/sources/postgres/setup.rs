//! Before streaming, on the same authenticated replication session: the server can do
//! logical replication, the publication and the slot exist (created when configured to),
//! every configured table is published, and the tables' primary keys (the default ids).
//! Each refusal names what is missing and how to fix it.

use std::collections::HashMap;

use pgwire_replication::{PgWireError, QueryRow, ReplicationClient};

use super::config::{PgConfig, PgError};

/// Why a session could not be set up: something only configuration fixes, or a connection
/// problem that waiting may.
pub enum SetupError {
    Fatal(PgError),
    Retry(PgWireError),
}

impl From<PgError> for SetupError {
    fn from(e: PgError) -> Self {
        SetupError::Fatal(e)
    }
}

/// Whether a server error says the role lacks a privilege.
pub fn is_permission(e: &PgWireError) -> bool {
    let text = e.to_string();
    text.contains("42501")
        || text.contains("permission denied")
        || text.contains("must be superuser or replication role")
        || text.contains("must be superuser or have")
}

async fn query(
    client: &mut ReplicationClient,
    cfg: &PgConfig,
    sql: &str,
    what: &str,
) -> Result<Vec<QueryRow>, SetupError> {
    match client.simple_query(sql).await {
        Ok(rows) => Ok(rows),
        Err(e) if is_permission(&e) => Err(SetupError::Fatal(PgError::Permission {
            user: cfg.user.clone(),
            what: what.to_owned(),
            message: e.to_string(),
        })),
        Err(e) if e.is_server() => Err(SetupError::Fatal(PgError::Server {
            what: what.to_owned(),
            message: e.to_string(),
        })),
        Err(e) => Err(SetupError::Retry(e)),
    }
}

fn text(row: &QueryRow, i: usize) -> String {
    row.get(i)
        .and_then(|v| v.as_ref())
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default()
}

/// Runs every check (creating what is configured to be created); returns the primary key
/// columns of the published tables.
pub async fn prepare(
    client: &mut ReplicationClient,
    cfg: &PgConfig,
) -> Result<HashMap<(String, String), Vec<String>>, SetupError> {
    let rows = query(client, cfg, "SHOW wal_level", "read `wal_level`").await?;
    let level = rows.first().map(|r| text(r, 0)).unwrap_or_default();
    if level != "logical" {
        return Err(PgError::WalLevel { found: level }.into());
    }
    let (pubname, slot) = (&cfg.publication, &cfg.slot);
    let found = query(
        client,
        cfg,
        &format!("SELECT 1 FROM pg_publication WHERE pubname = '{pubname}'"),
        "read publications",
    )
    .await?;
    if found.is_empty() {
        if !cfg.create {
            return Err(PgError::NoPublication {
                publication: pubname.clone(),
            }
            .into());
        }
        let target = if cfg.tables.is_empty() {
            "ALL TABLES".to_owned()
        } else {
            let names: Vec<String> = cfg
                .tables
                .iter()
                .map(|t| {
                    let (s, t) = t.qualified_name();
                    format!("{s}.{t}")
                })
                .collect();
            format!("TABLE {}", names.join(", "))
        };
        query(
            client,
            cfg,
            &format!("CREATE PUBLICATION {pubname} FOR {target}"),
            "create the publication",
        )
        .await?;
        tracing::info!(publication = %pubname, "created the publication");
    }
    let published = query(
        client,
        cfg,
        &format!(
            "SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = '{pubname}'"
        ),
        "read the publication's tables",
    )
    .await?;
    let published: Vec<(String, String)> =
        published.iter().map(|r| (text(r, 0), text(r, 1))).collect();
    for t in &cfg.tables {
        let name = t.qualified_name();
        if !published.contains(&name) {
            return Err(PgError::NotPublished {
                table: format!("{}.{}", name.0, name.1),
                publication: pubname.clone(),
            }
            .into());
        }
    }
    let slots = query(
        client,
        cfg,
        &format!("SELECT plugin FROM pg_replication_slots WHERE slot_name = '{slot}'"),
        "read replication slots",
    )
    .await?;
    match slots.first().map(|r| text(r, 0)) {
        Some(plugin) if plugin == "pgoutput" => {}
        Some(plugin) => {
            return Err(PgError::WrongPlugin {
                slot: slot.clone(),
                plugin,
            }
            .into());
        }
        None if cfg.create => {
            query(
                client,
                cfg,
                &format!("CREATE_REPLICATION_SLOT {slot} LOGICAL pgoutput NOEXPORT_SNAPSHOT"),
                "create the replication slot",
            )
            .await?;
            tracing::info!(slot = %slot, "created the replication slot");
        }
        None => return Err(PgError::NoSlot { slot: slot.clone() }.into()),
    }
    let keys = query(
        client,
        cfg,
        &format!(
            "SELECT n.nspname, c.relname, a.attname \
             FROM pg_publication_tables p \
             JOIN pg_namespace n ON n.nspname = p.schemaname \
             JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = p.tablename \
             JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary \
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY(i.indkey) \
             WHERE p.pubname = '{pubname}' \
             ORDER BY n.nspname, c.relname, array_position(i.indkey::int2[], a.attnum)"
        ),
        "read primary keys",
    )
    .await?;
    let mut primary_keys: HashMap<(String, String), Vec<String>> = HashMap::new();
    for row in &keys {
        primary_keys
            .entry((text(row, 0), text(row, 1)))
            .or_default()
            .push(text(row, 2));
    }
    Ok(primary_keys)
}
