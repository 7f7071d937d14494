//! What an event covers when it names no ids, and where it came from: context keys a source
//! sets without a contract change.

/// Context key of an event's scope.
pub const SCOPE_KEY: &str = "tagbust.scope";
/// [`SCOPE_KEY`]'s value for "every row of the resource" (a `TRUNCATE`, or a change whose
/// rows the source cannot name): a bulk operation with no ids, as opposed to one that
/// names its ids.
pub const SCOPE_WHOLE_RESOURCE: &str = "resource";
/// Context key naming where an event came from (the PostgreSQL source writes
/// `postgres lsn=0/16B3748 xid=750`); explain shows it.
pub const SOURCE_KEY: &str = "tagbust.source";

/// True when an event stands for every row of its resource (not for its listed ids):
/// `context` is the event's context lookup, e.g. `|k| event.context.get(k)`.
pub fn is_whole_resource<'a>(context: impl Fn(&str) -> Option<&'a str>) -> bool {
    context(SCOPE_KEY) == Some(SCOPE_WHOLE_RESOURCE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_marker_means_the_whole_resource() {
        assert!(is_whole_resource(|k| (k == SCOPE_KEY).then_some("resource")));
        assert!(!is_whole_resource(|k| (k == SCOPE_KEY).then_some("ids")));
        assert!(!is_whole_resource(|_| None));
    }
}
