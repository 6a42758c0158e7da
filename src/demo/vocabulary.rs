//! The words and proportions of the demo database: pattern types, categories,
//! confidence tiers, usage, agents and the rest, with their relative weights.

use super::generate::{DAY, HOUR};

// What rows are made of, with relative weights where the mix is skewed.
#[rustfmt::skip]
pub(super) const PATTERN_TYPES: [(&str, u32); 10] = [
    ("goap_planning", 22), ("task_decomposition", 18), ("code_review", 14), ("error_recovery", 11),
    ("coordination", 10), ("optimization", 8), ("research", 6), ("testing", 5),
    ("documentation", 4), ("security_audit", 2),
];
#[rustfmt::skip]
pub(super) const CATEGORIES: [(Option<&str>, u32); 14] = [
    (Some("backend"), 16), (Some("frontend"), 12), (Some("database"), 10), (Some("api"), 10),
    (Some("infrastructure"), 8), (Some("testing"), 8), (Some("security"), 5),
    (Some("performance"), 6), (Some("documentation"), 4), (Some("devops"), 5), (Some("ml"), 3),
    (Some("general"), 6), (None, 8), (Some(""), 3),
];
/// The runbook's confidence tiers, excellent down to low, as ranges; most patterns are good.
#[rustfmt::skip]
pub(super) const TIERS: [((f64, f64), u32); 6] = [
    ((0.9, 1.0), 8), ((0.8, 0.9), 17), ((0.7, 0.8), 30), ((0.6, 0.7), 20), ((0.5, 0.6), 12),
    ((0.05, 0.5), 13),
];
/// Uses of patterns used at all: mostly cold (<= 2), a quarter hot (> 10), a few over 100.
#[rustfmt::skip]
pub(super) const USAGE: [((i64, i64), u32); 4] =
    [((1, 2), 35), ((3, 10), 35), ((11, 100), 25), ((101, 2000), 5)];
#[rustfmt::skip]
pub(super) const TASK_TYPES: [&str; 8] = [
    "feature_implementation", "bug_fix", "refactoring", "code_review", "testing", "documentation",
    "deployment", "research",
];
#[rustfmt::skip]
pub(super) const OUTCOMES: [(&str, u32); 4] =
    [("success", 70), ("partial", 12), ("failure", 12), ("timeout", 6)];
#[rustfmt::skip]
pub(super) const AGENTS: [&str; 9] = [
    "coder", "reviewer", "tester", "planner", "researcher", "architect", "security-auditor",
    "perf-analyzer", "documenter",
];
#[rustfmt::skip]
pub(super) const NAMESPACES: [(&str, u32); 6] = [
    ("swarm", 30), ("agents", 20), ("tasks", 20), ("sessions", 15), ("neural", 10), ("default", 5),
];
pub(super) const TTLS: [i64; 4] = [HOUR, DAY, 7 * DAY, 30 * DAY];
#[rustfmt::skip]
pub(super) const MIGRATIONS: [&str; 6] = [
    "initial", "add_pattern_embeddings", "add_verification_history", "add_memory_entries_ttl",
    "add_pattern_category_index", "add_metrics_log",
];
pub(super) const WORDS: [&str; 24] = [
    "agent", "task", "plan", "step", "goal", "retry", "cache", "query", "schema", "module",
    "review", "test", "deploy", "merge", "branch", "index", "latency", "memory", "swarm", "token",
    "verify", "refactor", "handler", "config",
];
