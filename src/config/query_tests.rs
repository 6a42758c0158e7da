use std::path::Path;
use std::time::Duration;

use crate::config::Config;

fn parse(queries: &str) -> Result<Config, String> {
    let text = format!("[[database]]\nname = \"memory\"\npath = \"memory.db\"\n{queries}");
    Config::parse(Path::new("/etc/caretaker/caretaker.toml"), &text).map_err(|e| e.to_string())
}

#[test]
fn the_issue_example_is_accepted_with_its_defaults() {
    let cfg = parse(
        r#"
[[query]]
name = "hot_patterns_lookup"
sql = "SELECT id FROM patterns WHERE type = 'code_review' ORDER BY confidence DESC LIMIT 10"
interval = "30s"
timeout = "1s"

[[query]]
name = "by_type"
sql = "SELECT type, COUNT(*) AS n FROM patterns GROUP BY type"
value = "n"
labels = ["type"]
"#,
    )
    .expect("valid");
    assert_eq!(cfg.queries.len(), 2);
    assert_eq!(cfg.queries[0].timeout, Duration::from_secs(1));
    assert_eq!(cfg.queries[1].interval, Duration::from_secs(30));
    assert_eq!(cfg.queries[1].labels, vec!["type".to_string()]);
}

#[test]
fn bad_sql_and_writes_are_refused_with_their_position() {
    let e = parse("[[query]]\nname = \"q\"\nsql = \"SELEC id FROM patterns\"\n").unwrap_err();
    assert!(
        e.contains("caretaker.toml:6:7") && e.contains("syntax error"),
        "{e}"
    );
    for write in [
        "DELETE FROM patterns",
        "UPDATE patterns SET confidence = 1",
        "INSERT INTO metrics_log (metric_name, metric_value, timestamp) VALUES ('a', 1, 'b')",
        "CREATE TABLE x (a)",
        "DROP TABLE patterns",
    ] {
        let e = parse(&format!("[[query]]\nname = \"q\"\nsql = \"{write}\"\n")).unwrap_err();
        assert!(e.contains("would write"), "{write}: {e}");
    }
    for quiet in ["BEGIN", "ATTACH 'x.db' AS x", "PRAGMA query_only = 1"] {
        let e = parse(&format!("[[query]]\nname = \"q\"\nsql = \"{quiet}\"\n")).unwrap_err();
        assert!(
            e.contains("no columns") || e.contains("would write"),
            "{quiet}: {e}"
        );
    }
    let e =
        parse("[[query]]\nname = \"q\"\nsql = \"SELECT 1; DELETE FROM patterns\"\n").unwrap_err();
    assert!(e.contains("Multiple statements"), "{e}");
    let e = parse("[[query]]\nname = \"q\"\nsql = \"EXPLAIN SELECT 1\"\n").unwrap_err();
    assert!(e.contains("EXPLAIN"), "{e}");
}

#[test]
fn a_table_outside_the_seed_schema_waits_for_the_real_database() {
    let cfg = parse("[[query]]\nname = \"q\"\nsql = \"SELECT a FROM app_cache\"\n").expect("valid");
    assert_eq!(cfg.queries[0].sql, "SELECT a FROM app_cache");
}

#[test]
fn names_labels_values_and_timeouts_are_checked() {
    let cases = [
        ("name = \"a b\"\nsql = \"SELECT 1\"", "query name"),
        ("name = \"q\"\nsql = \"SELECT 1 AS n\"\nvalue = \"m\"", "no column \"m\""),
        ("name = \"q\"\nsql = \"SELECT 1 AS n, 2 AS database\"\nvalue = \"n\"\nlabels = [\"database\"]", "other than"),
        ("name = \"q\"\nsql = \"SELECT 1 AS n, 'a' AS t\"\nlabels = [\"t\"]", "need a value"),
        ("name = \"q\"\nsql = \"SELECT 1 AS n\"\nvalue = \"n\"\nlabels = [\"n\"]", "both the value and a label"),
        ("name = \"q\"\nsql = \"SELECT 1\"\ninterval = \"1s\"\ntimeout = \"2s\"", "must not exceed"),
    ];
    for (body, want) in cases {
        let e = parse(&format!("[[query]]\n{body}\n")).unwrap_err();
        assert!(e.contains(want), "{body}: {e}");
    }
    let e = parse("[[query]]\nname = \"q\"\nsql = \"SELECT 1\"\n[[query]]\nname = \"q\"\nsql = \"SELECT 2\"\n")
        .unwrap_err();
    assert!(e.contains("used twice"), "{e}");
}
