//! What a write did.

use std::fmt;

/// What the write did. Bulk forms are their own variants so that no rule can forget them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum Operation {
    Create,
    Update,
    Delete,
    Upsert,
    BulkCreate,
    BulkUpdate,
    BulkDelete,
    BulkUpsert,
}

impl Operation {
    /// Every operation, single forms first.
    pub const ALL: [Operation; 8] = [
        Operation::Create,
        Operation::Update,
        Operation::Delete,
        Operation::Upsert,
        Operation::BulkCreate,
        Operation::BulkUpdate,
        Operation::BulkDelete,
        Operation::BulkUpsert,
    ];

    /// True for the bulk forms.
    pub fn is_bulk(self) -> bool {
        matches!(
            self,
            Operation::BulkCreate
                | Operation::BulkUpdate
                | Operation::BulkDelete
                | Operation::BulkUpsert
        )
    }

    /// The single-row form of this operation (`BulkDelete` → `Delete`).
    pub fn single(self) -> Operation {
        match self {
            Operation::BulkCreate => Operation::Create,
            Operation::BulkUpdate => Operation::Update,
            Operation::BulkDelete => Operation::Delete,
            Operation::BulkUpsert => Operation::Upsert,
            other => other,
        }
    }

    /// The snake_case name used in events and configuration (`bulk_delete`).
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Update => "update",
            Operation::Delete => "delete",
            Operation::Upsert => "upsert",
            Operation::BulkCreate => "bulk_create",
            Operation::BulkUpdate => "bulk_update",
            Operation::BulkDelete => "bulk_delete",
            Operation::BulkUpsert => "bulk_upsert",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One changed field: `old` is `None` for a create, `new` is `None` for a delete.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(deny_unknown_fields)
)]
pub struct FieldChange {
    pub field: String,
    #[cfg_attr(feature = "serde", serde(default))]
    pub old: Option<String>,
    #[cfg_attr(feature = "serde", serde(default))]
    pub new: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::Operation;

    #[test]
    fn bulk_forms_map_to_their_single_forms() {
        for op in Operation::ALL {
            assert_eq!(op.is_bulk(), op.single() != op);
            assert_eq!(op.as_str().starts_with("bulk_"), op.is_bulk());
        }
    }
}
