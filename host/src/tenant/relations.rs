//! Relationships between tag kinds, and cascade expansion through them.
//!
//! A tag's *kind* is the part before its first `:` (`user:42` is of kind `user`; a tag without
//! `:` is its own kind). An edge `user → session` means: when a `user:…` tag is invalidated
//! with cascade, the tag of kind `session` with the same rest (`session:42`) is invalidated
//! too. Hierarchies (`global → project → branch → task`) are chains of edges; entries are
//! tagged with their ancestors' ids, e.g. a branch context of project 7 carries `branch:7`.

use std::collections::{BTreeMap, HashSet, VecDeque};

use serde::Serialize;

/// Default depth of cascade expansion (edges followed from the original tag).
pub const DEFAULT_MAX_DEPTH: usize = 2;
/// Default cap on tags one cascade may add; past it expansion stops and is counted.
pub const DEFAULT_MAX_FANOUT: usize = 256;

/// A tenant's relationship graph between tag kinds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relationships {
    edges: BTreeMap<String, Vec<String>>,
    max_depth: usize,
    max_fanout: usize,
}

impl Default for Relationships {
    fn default() -> Self {
        Relationships {
            edges: BTreeMap::new(),
            max_depth: DEFAULT_MAX_DEPTH,
            max_fanout: DEFAULT_MAX_FANOUT,
        }
    }
}

/// One tag a cascade reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cascaded {
    pub tag: String,
    /// Edges followed from the original tag (1 = a direct relation).
    pub depth: usize,
    /// The tag it was reached from.
    pub via: String,
}

/// The result of expanding one tag.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Expansion {
    pub tags: Vec<Cascaded>,
    /// True when the fan-out cap stopped the expansion.
    pub truncated: bool,
}

/// The kind of a tag and the rest after it.
fn split(tag: &str) -> (&str, Option<&str>) {
    match tag.split_once(':') {
        Some((kind, rest)) => (kind, Some(rest)),
        None => (tag, None),
    }
}

impl Relationships {
    pub fn new() -> Relationships {
        Relationships::default()
    }

    /// Invalidating a tag of kind `from` with cascade also invalidates kind `to`.
    pub fn edge(mut self, from: &str, to: &str) -> Relationships {
        let targets = self.edges.entry(from.to_owned()).or_default();
        if !targets.iter().any(|t| t == to) {
            targets.push(to.to_owned());
        }
        self
    }

    /// `from → to` for each target.
    pub fn edges(self, from: &str, to: &[&str]) -> Relationships {
        to.iter().fold(self, |r, t| r.edge(from, t))
    }

    /// Edges both ways.
    pub fn bidirectional(self, a: &str, b: &str) -> Relationships {
        self.edge(a, b).edge(b, a)
    }

    pub fn max_depth(mut self, depth: usize) -> Relationships {
        self.max_depth = depth;
        self
    }

    pub fn max_fanout(mut self, fanout: usize) -> Relationships {
        self.max_fanout = fanout;
        self
    }

    pub fn is_empty(&self) -> bool {
        self.edges.is_empty()
    }

    /// Breadth-first expansion of `tag`, without the tag itself: each tag at most once (cycles
    /// end), at most `max_depth` edges away, at most `max_fanout` tags.
    pub fn expand(&self, tag: &str) -> Expansion {
        let mut out = Expansion::default();
        let mut seen: HashSet<String> = HashSet::from([tag.to_owned()]);
        let mut queue = VecDeque::from([(tag.to_owned(), 0usize)]);
        while let Some((current, depth)) = queue.pop_front() {
            if depth >= self.max_depth {
                continue;
            }
            let (kind, rest) = split(&current);
            let Some(targets) = self.edges.get(kind) else {
                continue;
            };
            for target in targets {
                let next = match rest {
                    Some(rest) => format!("{target}:{rest}"),
                    None => target.clone(),
                };
                if !seen.insert(next.clone()) {
                    continue;
                }
                if out.tags.len() >= self.max_fanout {
                    out.truncated = true;
                    return out;
                }
                out.tags.push(Cascaded {
                    tag: next.clone(),
                    depth: depth + 1,
                    via: current.clone(),
                });
                queue.push_back((next, depth + 1));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(e: &Expansion) -> Vec<&str> {
        e.tags.iter().map(|c| c.tag.as_str()).collect()
    }

    #[test]
    fn follows_edges_keeping_the_id() {
        let r = Relationships::new().edges("user", &["session", "preferences"]);
        assert_eq!(
            tags(&r.expand("user:42")),
            vec!["session:42", "preferences:42"]
        );
        assert!(r.expand("session:42").tags.is_empty());
        assert_eq!(tags(&r.expand("user")), vec!["session", "preferences"]);
    }

    #[test]
    fn depth_is_bounded() {
        let r = Relationships::new()
            .edge("global", "project")
            .edge("project", "branch")
            .edge("branch", "task");
        assert_eq!(tags(&r.expand("global:1")), vec!["project:1", "branch:1"]);
        let deep = r.clone().max_depth(3);
        let e = deep.expand("global:1");
        assert_eq!(tags(&e), vec!["project:1", "branch:1", "task:1"]);
        assert_eq!(e.tags[2].depth, 3);
        assert_eq!(e.tags[2].via, "branch:1");
    }

    #[test]
    fn cycles_and_bidirectional_edges_end() {
        let r = Relationships::new()
            .bidirectional("order", "invoice")
            .edge("invoice", "order")
            .max_depth(10);
        assert_eq!(tags(&r.expand("order:9")), vec!["invoice:9"]);
        assert_eq!(tags(&r.expand("invoice:9")), vec!["order:9"]);
    }

    #[test]
    fn fanout_is_capped_and_reported() {
        let many: Vec<String> = (0..10).map(|i| format!("k{i}")).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        let r = Relationships::new().edges("a", &refs).max_fanout(4);
        let e = r.expand("a:1");
        assert_eq!(e.tags.len(), 4);
        assert!(e.truncated);
    }
}
