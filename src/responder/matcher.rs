//! Alertmanager's label matchers (`name="value"`, `!=`, `=~`, `!~`), used by
//! rules to select the alerts they act on.

use std::collections::BTreeMap;

use regex::Regex;

/// How a matcher compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

/// One label matcher. Regexes are anchored, as in Alertmanager.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub name: String,
    pub op: Op,
    pub value: String,
    regex: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl Matcher {
    /// Parses `name<op>"value"` (the value may also be unquoted).
    pub fn parse(text: &str) -> Result<Matcher, String> {
        let text = text.trim();
        let name_end = text
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .ok_or_else(|| format!("matcher {text:?} has no operator"))?;
        let name = &text[..name_end];
        if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(format!("matcher {text:?} does not start with a label name"));
        }
        let rest = text[name_end..].trim_start();
        let (op, rest) = if let Some(r) = rest.strip_prefix("=~") {
            (Op::Regex, r)
        } else if let Some(r) = rest.strip_prefix("!~") {
            (Op::NotRegex, r)
        } else if let Some(r) = rest.strip_prefix("!=") {
            (Op::NotEqual, r)
        } else if let Some(r) = rest.strip_prefix('=') {
            (Op::Equal, r)
        } else {
            return Err(format!(
                "matcher {text:?}: expected =, !=, =~ or !~ after {name:?}"
            ));
        };
        let rest = rest.trim();
        let value = if let Some(inner) = rest.strip_prefix('"') {
            let inner = inner
                .strip_suffix('"')
                .ok_or_else(|| format!("matcher {text:?}: unterminated quote"))?;
            unescape(inner)
        } else {
            rest.to_string()
        };
        let regex = match op {
            Op::Regex | Op::NotRegex => Some(
                Regex::new(&format!("^(?:{value})$"))
                    .map_err(|e| format!("matcher {text:?}: invalid regex: {e}"))?,
            ),
            _ => None,
        };
        Ok(Matcher {
            name: name.to_string(),
            op,
            value,
            regex,
        })
    }

    /// Whether `labels` satisfy the matcher (a missing label is the empty string).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let have = labels.get(&self.name).map_or("", String::as_str);
        match (self.op, &self.regex) {
            (Op::Equal, _) => have == self.value,
            (Op::NotEqual, _) => have != self.value,
            (Op::Regex, Some(r)) => r.is_match(have),
            (Op::NotRegex, Some(r)) => !r.is_match(have),
            _ => false,
        }
    }
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some(o) => out.push(o),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// True when every matcher holds.
pub fn all_match(matchers: &[Matcher], labels: &BTreeMap<String, String>) -> bool {
    matchers.iter().all(|m| m.matches(labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_four_operators() {
        let l = labels(&[("alertname", "CaretakerWalLarge"), ("severity", "warning")]);
        assert!(Matcher::parse(r#"alertname="CaretakerWalLarge""#)
            .expect("parse")
            .matches(&l));
        assert!(!Matcher::parse(r#"alertname!="CaretakerWalLarge""#)
            .expect("parse")
            .matches(&l));
        assert!(Matcher::parse(r#"alertname=~"Caretaker.*""#)
            .expect("parse")
            .matches(&l));
        assert!(!Matcher::parse(r#"alertname=~"Wal""#)
            .expect("anchored")
            .matches(&l));
        assert!(Matcher::parse(r#"severity!~"crit.*""#)
            .expect("parse")
            .matches(&l));
        assert!(Matcher::parse("severity = warning")
            .expect("unquoted")
            .matches(&l));
        assert!(
            Matcher::parse(r#"database="""#).expect("empty").matches(&l),
            "missing label is empty"
        );
    }

    #[test]
    fn malformed_matchers_are_refused() {
        for bad in ["", "alertname", "=x", "a=~\"(\"", "a=\"open", "1a=b"] {
            assert!(Matcher::parse(bad).is_err(), "{bad:?}");
        }
    }
}
