//! `[[discover]]`: databases found by a glob instead of listed one by one.
//!
//! Discovery only produces more `[[database]]` tables: each match of a glob
//! becomes one, its keys filled from the entry's templates (`{1}`.. the text
//! each wildcard matched, `{path}`, `{parent}`), and the file is then resolved
//! as if they had been written in it. So a discovered database is checked,
//! collected, backed up, scheduled and answered exactly like a listed one, and
//! the daemon picks up new and vanished files through its reload path.
//!
//! Naming is the one decision of its own ([`assign`], pure): names are
//! sanitised to the `database` label's alphabet; two paths that would get one
//! name are both refused (never merged), and an explicit `[[database]]` of the
//! same path wins.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use regex::Regex;

/// One `[[discover]]` entry as written, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct DiscoverSpec {
    /// The glob as written: also the `discover` label of its metrics.
    pub label: String,
    /// The glob against the configuration's folder.
    pub glob: String,
    /// The name template.
    pub name: String,
    /// Every other key, a `[[database]]` table with templates.
    pub template: toml::Table,
}

/// What one entry matched at the last scan.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DiscoverReport {
    pub label: String,
    /// Databases taken from this entry: (name, path).
    pub databases: Vec<(String, PathBuf)>,
    /// Paths refused, with why (logged, counted, never merged).
    pub refused: Vec<String>,
}

/// One file a glob matched, with the text each wildcard matched.
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    pub path: PathBuf,
    pub captures: Vec<String>,
}

/// Reads the `[[discover]]` tables: `glob` and `name` are required strings.
pub fn specs(raw: &[toml::Table], base: &Path) -> Result<Vec<DiscoverSpec>, String> {
    let mut out = Vec::new();
    for (i, table) in raw.iter().enumerate() {
        let text = |key: &str| match table.get(key) {
            Some(toml::Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            _ => Err(format!("discover[{i}].{key} must be a non-empty string")),
        };
        let (label, name) = (text("glob")?, text("name")?);
        let mut template = table.clone();
        template.remove("glob");
        template.remove("name");
        if template.contains_key("path") {
            return Err(format!(
                "discover[{i}]: path comes from the glob, it cannot be set"
            ));
        }
        let glob = if Path::new(&label).is_absolute() {
            label.clone()
        } else {
            base.join(&label).to_string_lossy().into_owned()
        };
        pattern(&glob).map_err(|e| format!("discover[{i}].glob: {e}"))?;
        out.push(DiscoverSpec {
            label,
            glob,
            name,
            template,
        });
    }
    Ok(out)
}

/// The glob as a regular expression with one group per wildcard (`*`, `?`,
/// `[...]`; `**` may cross folders).
pub(crate) fn pattern(glob: &str) -> Result<Regex, String> {
    let mut re = String::from("^");
    let mut chars = glob.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                re.push_str("(.*)");
            }
            '*' => re.push_str("([^/]*)"),
            '?' => re.push_str("([^/])"),
            '[' => {
                let mut class = String::new();
                loop {
                    match chars.next() {
                        Some(']') if !class.is_empty() => break,
                        Some(ch) => class.push(ch),
                        None => return Err(format!("{glob:?} has an unclosed '['")),
                    }
                }
                let class = class
                    .strip_prefix('!')
                    .map_or(class.clone(), |c| format!("^{c}"));
                re.push_str(&format!("([{}])", class.replace('\\', "\\\\")));
            }
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    Regex::new(&re).map_err(|e| e.to_string())
}

/// The files `glob` matches today, with their captures, in path order.
pub fn scan(spec: &DiscoverSpec) -> Vec<Match> {
    let Ok(re) = pattern(&spec.glob) else {
        return Vec::new();
    };
    let Ok(paths) = glob::glob(&spec.glob) else {
        return Vec::new();
    };
    let mut out: Vec<Match> = paths
        .filter_map(Result::ok)
        .filter(|p| p.is_file())
        .filter_map(|path| {
            let text = path.to_str()?;
            let caps = re.captures(text)?;
            let captures = caps
                .iter()
                .skip(1)
                .map(|m| m.map_or(String::new(), |m| m.as_str().to_string()))
                .collect();
            Some(Match { path, captures })
        })
        .collect();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// Fills `{1}`.., `{path}` and `{parent}` in `template`.
pub fn fill(template: &str, m: &Match) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| format!("{template:?} has an unclosed '{{'"))?;
        let key = &rest[open + 1..open + close];
        let parent = m.path.parent().unwrap_or(Path::new(""));
        let value = match key {
            "path" => m.path.to_string_lossy().into_owned(),
            "parent" => parent.to_string_lossy().into_owned(),
            n => n
                .parse::<usize>()
                .ok()
                .filter(|n| *n >= 1)
                .and_then(|n| m.captures.get(n - 1).cloned())
                .ok_or_else(|| {
                    format!(
                        "{template:?}: {{{key}}} is not {{path}}, {{parent}} or one of the glob's {} wildcard(s)",
                        m.captures.len()
                    )
                })?,
        };
        out.push_str(&value);
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A name in the `database` label's alphabet (letters, digits, `_`, `-`,
/// `.`; not starting with `.`): anything else becomes `_`.
pub fn sanitise(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with('.') {
        out.replace_range(..1, "_");
    }
    out
}

/// Names every match: `(discover index, name, path)` taken, and a report per
/// entry. A path listed by an explicit `[[database]]` is left to it; a name
/// taken by an explicit database of another path, or by two matches, is
/// refused for all of them.
pub fn assign(
    found: &[(usize, String, PathBuf)],
    explicit: &[(String, PathBuf)],
    labels: &[String],
) -> (Vec<(usize, String, PathBuf)>, Vec<DiscoverReport>) {
    let explicit_paths: HashSet<&PathBuf> = explicit.iter().map(|(_, p)| p).collect();
    let explicit_names: HashSet<&String> = explicit.iter().map(|(n, _)| n).collect();
    let mut seen_paths = HashSet::new();
    let mut candidates: Vec<&(usize, String, PathBuf)> = Vec::new();
    for f in found {
        // The first entry that matches a path names it; explicit ones win.
        if !explicit_paths.contains(&f.2) && seen_paths.insert(f.2.clone()) {
            candidates.push(f);
        }
    }
    let mut per_name: BTreeMap<&String, usize> = BTreeMap::new();
    for c in &candidates {
        *per_name.entry(&c.1).or_default() += 1;
    }
    let mut reports: Vec<DiscoverReport> = labels
        .iter()
        .map(|l| DiscoverReport {
            label: l.clone(),
            ..Default::default()
        })
        .collect();
    let mut taken = Vec::new();
    for (i, name, path) in candidates {
        let why = if name.is_empty() {
            Some("its name is empty".to_string())
        } else if explicit_names.contains(name) {
            Some(format!(
                "name {name:?} belongs to a [[database]] of another path"
            ))
        } else if per_name[name] > 1 {
            Some(format!(
                "another discovered path would also be named {name:?}"
            ))
        } else {
            None
        };
        match why {
            Some(why) => reports[*i]
                .refused
                .push(format!("{} refused: {why}", path.display())),
            None => {
                reports[*i].databases.push((name.clone(), path.clone()));
                taken.push((*i, name.clone(), path.clone()));
            }
        }
    }
    (taken, reports)
}

/// Fills the templates in every string of `value` (tables and arrays too).
fn fill_value(value: &toml::Value, m: &Match) -> Result<toml::Value, String> {
    Ok(match value {
        toml::Value::String(s) => toml::Value::String(fill(s, m)?),
        toml::Value::Array(a) => toml::Value::Array(
            a.iter()
                .map(|v| fill_value(v, m))
                .collect::<Result<_, _>>()?,
        ),
        toml::Value::Table(t) => toml::Value::Table(
            t.iter()
                .map(|(k, v)| Ok((k.clone(), fill_value(v, m)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

/// Scans every entry and writes the `[[database]]` tables of what it found,
/// as TOML text to resolve with the file; `explicit` are the file's own
/// databases (name, absolute path).
pub fn generate(
    specs: &[DiscoverSpec],
    explicit: &[(String, PathBuf)],
) -> Result<(String, Vec<DiscoverReport>), String> {
    let mut found = Vec::new();
    let mut matches = BTreeMap::new();
    for (i, spec) in specs.iter().enumerate() {
        for m in scan(spec) {
            let name = sanitise(&fill(&spec.name, &m)?);
            found.push((i, name, m.path.clone()));
            matches.entry((i, m.path.clone())).or_insert(m);
        }
    }
    let labels: Vec<String> = specs.iter().map(|s| s.label.clone()).collect();
    let (taken, reports) = assign(&found, explicit, &labels);
    let mut tables = Vec::new();
    for (i, name, path) in taken {
        let Some(m) = matches.get(&(i, path.clone())) else {
            continue;
        };
        let toml::Value::Table(mut table) =
            fill_value(&toml::Value::Table(specs[i].template.clone()), m)?
        else {
            continue;
        };
        table.insert("name".into(), toml::Value::String(name));
        let path = path.to_str().ok_or("a discovered path is not UTF-8")?;
        table.insert("path".into(), toml::Value::String(path.to_string()));
        tables.push(toml::Value::Table(table));
    }
    if tables.is_empty() {
        return Ok((String::new(), reports));
    }
    let mut doc = toml::Table::new();
    doc.insert("database".into(), toml::Value::Array(tables));
    let text = toml::to_string(&doc).map_err(|e| e.to_string())?;
    Ok((text, reports))
}

#[cfg(test)]
#[path = "discover_tests.rs"]
mod tests;
