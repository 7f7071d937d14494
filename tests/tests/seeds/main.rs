//! The seed systems of `shared/seeds/`, rebuilt as tagbust rules and replayed through the
//! host: tagbust's acceptance suite. Each scenario is written once, generic over the backend,
//! and runs as `<scenario>::memory` and `<scenario>::redis` (database 11 of the Redis on
//! 127.0.0.1:6379, a key prefix per test). Where a seed's design had a flaw, the test shows the
//! fixed behaviour and a comment names the flaw.
//!
//! | seed | module |
//! | --- | --- |
//! | 000 an ORM's bulk nodes | `bulk_models` |
//! | 001 hierarchical contexts | `context_hierarchy` |
//! | 002 task completion rules | `task_controllers` |
//! | 003 table dependencies | `table_patterns` |
//! | 004 tagged invalidation engine | `tagged_engine` |

mod support;

mod bulk_models;
mod context_hierarchy;
mod table_patterns;
mod tagged_engine;
mod task_controllers;
