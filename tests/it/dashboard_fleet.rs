//! The dashboards over a fleet: one Grafana shows one host or all, never a sum
//! of unrelated databases. Every dashboard has `job` and `instance` variables
//! (multi-select, `All` = `.+`, read through the datasource variable), every
//! selector of every panel and annotation filters on both, every aggregation
//! keeps `instance`, provisioned dashboards are read-only, and every panel
//! that shows a quantity says its unit. Read from the files, without Grafana:
//! the live checks are in `dashboards.rs` and `fleet.rs`.

use std::path::Path;

use serde_json::Value;

/// Every dashboard file with its parsed JSON.
pub fn dashboards() -> Vec<(String, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("dashboards/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path).expect("read");
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            out.push((name, serde_json::from_str(&text).expect("json")));
        }
    }
    assert!(!out.is_empty(), "dashboards/ holds dashboards");
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Every panel (rows' children included) that is not a row.
pub fn panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(list: &'a Value, out: &mut Vec<&'a Value>) {
        for p in list.as_array().into_iter().flatten() {
            if p["type"] != "row" {
                out.push(p);
            }
            walk(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// The first query of the panel titled `title` in dashboard `file`.
pub fn panel_expr(file: &str, title: &str) -> String {
    let dashboards = dashboards();
    let (_, dashboard) = dashboards
        .iter()
        .find(|(f, _)| f == file)
        .unwrap_or_else(|| panic!("no dashboard {file}"));
    let panel = panels(dashboard)
        .into_iter()
        .find(|p| p["title"] == title)
        .unwrap_or_else(|| panic!("{file}: no panel {title:?}"));
    panel["targets"][0]["expr"]
        .as_str()
        .expect("a query")
        .to_string()
}

/// Every PromQL expression drawn on a dashboard: panel targets and annotations.
pub fn panel_expressions(dashboard: &Value) -> Vec<String> {
    let targets = panels(dashboard)
        .into_iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .filter_map(|t| t["expr"].as_str());
    let annotations = dashboard["annotations"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["expr"].as_str());
    targets.chain(annotations).map(str::to_string).collect()
}

/// One piece of a PromQL expression, as far as these checks need to know.
#[derive(Debug, PartialEq)]
enum Part {
    /// A series selector: metric name and its matchers (`""` when none).
    Selector(String, String),
    /// An aggregation operator and its `by (...)`/`without (...)` clause.
    Aggregation(String, Option<String>),
}

const AGGREGATIONS: &[&str] = &[
    "sum",
    "count",
    "max",
    "min",
    "avg",
    "group",
    "topk",
    "bottomk",
    "quantile",
    "stddev",
    "stdvar",
    "count_values",
];
const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "unless",
    "offset",
    "bool",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// The end (exclusive) of the bracketed text starting at `open`, skipping quoted strings.
fn closing(s: &[u8], open: usize, close: u8) -> usize {
    let mut i = open + 1;
    let mut quote = None;
    while i < s.len() {
        match (quote, s[i]) {
            (Some(_), b'\\') => i += 1,
            (Some(q), c) if c == q => quote = None,
            (None, b'"' | b'\'' | b'`') => quote = Some(s[i]),
            (None, c) if c == close => return i + 1,
            _ => {}
        }
        i += 1;
    }
    panic!("unclosed bracket in {}", String::from_utf8_lossy(s));
}

fn skip_spaces(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && s[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// The selectors and aggregations of `expr`, in order (a small PromQL
/// tokenizer: strings, ranges, numbers, `$variables`, names).
fn parts(expr: &str) -> Vec<Part> {
    let s = expr.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b':';
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if c == b'"' || c == b'\'' || c == b'`' {
            i = closing(s, i, c);
        } else if c == b'[' {
            i = closing(s, i, b']');
        } else if c == b'$' || c.is_ascii_digit() || c == b'.' {
            i += 1;
            while i < s.len() && (word(s[i]) || s[i] == b'.' || s[i] == b'{' || s[i] == b'}') {
                i += 1;
            }
        } else if word(c) {
            let start = i;
            while i < s.len() && word(s[i]) {
                i += 1;
            }
            let name = &expr[start..i];
            let next = skip_spaces(s, i);
            let clause = |at: usize| {
                let open = skip_spaces(s, at);
                (s.get(open) == Some(&b'(')).then(|| (open, closing(s, open, b')')))
            };
            if AGGREGATIONS.contains(&name) {
                let mut grouping = None;
                for kw in ["by", "without"] {
                    if expr[next..].starts_with(kw) {
                        if let Some((open, end)) = clause(next + kw.len()) {
                            grouping = Some(format!("{kw} {}", &expr[open..end]));
                            i = end;
                        }
                    }
                }
                out.push(Part::Aggregation(name.to_string(), grouping));
            } else if KEYWORDS.contains(&name) {
                if let Some((_, end)) = clause(i).filter(|_| name != "offset") {
                    i = end; // a label list, not a call
                }
            } else if s.get(next) == Some(&b'(') {
                // a function call: its arguments are read next
            } else if s.get(next) == Some(&b'{') {
                let end = closing(s, next, b'}');
                out.push(Part::Selector(name.into(), expr[next + 1..end - 1].into()));
                i = end;
            } else {
                out.push(Part::Selector(name.into(), String::new()));
            }
        } else if c == b'{' {
            let end = closing(s, i, b'}');
            out.push(Part::Selector(String::new(), expr[i + 1..end - 1].into()));
            i = end;
        } else {
            i += 1;
        }
    }
    out
}

/// What is wrong with `expr` for a fleet: selectors without both filters,
/// aggregations that add instances together.
fn fleet_problems(expr: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for part in parts(expr) {
        match part {
            Part::Selector(name, matchers) => {
                for filter in [r#"job=~"$job""#, r#"instance=~"$instance""#] {
                    if !matchers.split(',').any(|m| m.trim() == filter) {
                        problems.push(format!("{name}{{{matchers}}} lacks {filter}"));
                    }
                }
            }
            Part::Aggregation(op, grouping) => {
                let keeps = grouping.as_deref().is_some_and(|g| {
                    let labels = g.split(['(', ')', ',', ' ']).map(str::trim);
                    match g.strip_prefix("without") {
                        Some(_) => !labels.clone().any(|l| l == "instance" || l == "job"),
                        None => {
                            let l: Vec<&str> = labels.collect();
                            l.contains(&"instance") && l.contains(&"job")
                        }
                    }
                });
                if !keeps {
                    problems.push(format!(
                        "{op} {} adds instances together",
                        grouping.unwrap_or_default()
                    ));
                }
            }
        }
    }
    problems
}

#[test]
fn the_checker_finds_what_it_is_for() {
    let ok = r#"job=~"$job",instance=~"$instance""#;
    assert!(fleet_problems(&format!(
        "caretaker_database_up{{{ok},database=~\"$database\"}}"
    ))
    .is_empty());
    assert!(fleet_problems(&format!(
        "histogram_quantile(0.5, sum by (job, instance, le) (increase(x_bucket{{{ok}}}[$__range] offset 1h)))"
    ))
    .is_empty());
    assert!(fleet_problems(&format!(
        "sum without (pattern_type) (x{{{ok}}}) or on(job, instance) vector(0)"
    ))
    .is_empty());
    let bad = [
        ("caretaker_database_up", 2),
        (r#"caretaker_database_up{instance=~"$instance"}"#, 1),
        (r#"up{job="caretaker",instance=~"$instance"}"#, 1),
        (&format!("sum(x{{{ok}}})"), 1),
        (&format!("sum by (database) (x{{{ok}}})"), 1),
        (&format!("max without (instance) (x{{{ok}}})"), 1),
        (&format!("x{{{ok}}} / y"), 2),
        (
            &format!("time() - x{{{ok}}} * on(database) group_left z{{{ok}}}"),
            0,
        ),
        (&format!(r#"x{{{ok},a="}}"}} + count(y{{a="b"}})"#), 3),
    ];
    for (expr, n) in bad {
        assert_eq!(
            fleet_problems(expr).len(),
            n,
            "{expr}: {:?}",
            fleet_problems(expr)
        );
    }
}

#[test]
fn every_selector_filters_on_job_and_instance_and_nothing_sums_instances() {
    let mut problems = Vec::new();
    for (file, d) in dashboards() {
        let exprs = panel_expressions(&d);
        assert!(!exprs.is_empty(), "{file} has queries");
        for expr in exprs {
            problems.extend(
                fleet_problems(&expr)
                    .into_iter()
                    .map(|p| format!("{file}: {p}\n  in {expr}")),
            );
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_dashboard_has_the_fleet_variables_and_is_read_only() {
    for (file, d) in dashboards() {
        assert_eq!(
            d["editable"], false,
            "{file}: provisioned dashboards are not editable"
        );
        let vars = d["templating"]["list"].as_array().expect("variables");
        let names: Vec<&str> = vars.iter().filter_map(|v| v["name"].as_str()).collect();
        let at = |n: &str| {
            names
                .iter()
                .position(|x| *x == n)
                .unwrap_or_else(|| panic!("{file}: no {n} variable"))
        };
        assert!(
            at("datasource") < at("job")
                && at("job") < at("instance")
                && at("instance") < at("database"),
            "{file}: {names:?}"
        );
        for name in ["job", "instance"] {
            let v = &vars[at(name)];
            assert_eq!(v["type"], "query", "{file} {name}");
            assert_eq!(v["multi"], true, "{file} {name}");
            assert_eq!(v["includeAll"], true, "{file} {name}");
            assert_eq!(v["allValue"], ".+", "{file} {name}");
            assert_eq!(v["datasource"]["uid"], "${datasource}", "{file} {name}");
        }
        // Each variable's choices narrow with the one before it.
        let query = |n: &str| vars[at(n)]["query"].as_str().unwrap_or("").to_string();
        assert!(
            query("instance").contains(r#"job=~"$job""#),
            "{file}: {}",
            query("instance")
        );
        let db = query("database");
        assert!(
            db.contains(r#"job=~"$job""#) && db.contains(r#"instance=~"$instance""#),
            "{file}: {db}"
        );
    }
}

#[test]
fn every_panel_showing_a_quantity_has_a_unit() {
    let mut missing = Vec::new();
    for (file, d) in dashboards() {
        for p in panels(&d) {
            let defaults = &p["fieldConfig"]["defaults"];
            let unit = defaults["unit"].as_str().unwrap_or("");
            // "none" is right for states (value mappings) and names, not for quantities.
            let states = defaults["mappings"]
                .as_array()
                .is_some_and(|m| !m.is_empty());
            let names = p["options"]["textMode"] == "name";
            if unit.is_empty() || (unit == "none" && !states && !names && p["type"] != "table") {
                missing.push(format!("{file}: {} (unit {unit:?})", p["title"]));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "panels without a unit:\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_legend_names_the_instance_first() {
    let mut wrong = Vec::new();
    for (file, d) in dashboards() {
        for p in panels(&d) {
            for t in p["targets"].as_array().into_iter().flatten() {
                let legend = t["legendFormat"].as_str().unwrap_or("");
                // A table shows the instance as a column of its own.
                let ok = if p["type"] == "table" {
                    t["format"] == "table"
                        && p["transformations"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .all(|x| x["options"]["excludeByName"]["instance"] != true)
                } else {
                    legend.starts_with("{{instance}}")
                };
                if !ok {
                    wrong.push(format!("{file}: {} ({legend:?})", p["title"]));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "legends that do not start with the instance:\n{}",
        wrong.join("\n")
    );
}
