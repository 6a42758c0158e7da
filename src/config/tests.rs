use std::path::Path;
use std::time::Duration;

use super::*;

const EXAMPLE: &str = r#"[web]
listen_address = "127.0.0.1:10210"
token_file = "token"            # bearer token for every POST endpoint (used by the responder)

[[database]]
name = "memory"
path = "memory.db"
[database.backup]
dir = "backups"
retention = "30d"
"#;

#[test]
fn the_documented_example_is_accepted_unchanged() {
    let cfg = Config::parse(Path::new("/etc/caretaker/caretaker.toml"), EXAMPLE).expect("valid");
    assert_eq!(cfg.web.listen_address.port(), 10210);
    assert_eq!(
        cfg.web.token_file.as_deref(),
        Some(Path::new("/etc/caretaker/token"))
    );
    let db = &cfg.databases[0];
    assert_eq!(db.name, "memory");
    assert_eq!(db.path, Path::new("/etc/caretaker/memory.db"));
    let backup = db.backup.as_ref().expect("backup section");
    assert_eq!(backup.dir, Path::new("/etc/caretaker/backups"));
    assert_eq!(backup.retention, Duration::from_secs(30 * 24 * 3600));
    assert_eq!(backup.max_age, Duration::from_secs(26 * 3600));
}

#[test]
fn absolute_paths_stay_and_defaults_fill_in() {
    let text = "[[database]]\nname = \"a\"\npath = \"/srv/a.db\"\n";
    let cfg = Config::parse(Path::new("/etc/c.toml"), text).expect("valid");
    assert_eq!(cfg.databases[0].path, Path::new("/srv/a.db"));
    assert_eq!(cfg.web.listen_address.to_string(), DEFAULT_LISTEN_ADDRESS);
    assert_eq!(cfg.collect.label_limit, 20);
    assert!(cfg.databases[0].backup.is_none());
}

#[test]
fn an_unknown_key_is_an_error_with_line_and_column() {
    let text = "[web]\nlisten_address = \"127.0.0.1:1\"\nlisten_adress = \"x\"\n";
    let errors = Config::parse(Path::new("/c.toml"), text).expect_err("unknown key");
    let e = &errors.0[0];
    assert_eq!((e.line, e.column), (Some(3), Some(1)), "{e}");
    assert!(e.message.contains("listen_adress"), "{e}");
    assert!(e.to_string().starts_with("/c.toml:3:1: "), "{e}");
}

#[test]
fn bad_durations_names_and_duplicates_are_all_reported() {
    let text = r#"
[[database]]
name = "a b"
path = "x.db"

[[database]]
name = "ok"
path = "y.db"

[[database]]
name = "ok"
path = "z.db"
"#;
    let errors = Config::parse(Path::new("/c.toml"), text).expect_err("invalid");
    let lines: Vec<_> = errors.0.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![Some(3), Some(11)], "{errors}");

    let text = "[[database]]\nname = \"a\"\npath = \"a.db\"\n[database.backup]\ndir = \"b\"\nretention = \"thirty days\"\n";
    let errors = Config::parse(Path::new("/c.toml"), text).expect_err("invalid");
    assert_eq!(errors.0[0].line, Some(6), "{errors}");
    assert!(errors.0[0].message.contains("thirty days"), "{errors}");
}

#[test]
fn listen_address_and_label_limit_are_checked() {
    let text = "[web]\nlisten_address = \"localhost\"\n[collect]\nlabel_limit = 0\n";
    let errors = Config::parse(Path::new("/c.toml"), text).expect_err("invalid");
    assert_eq!(errors.0.len(), 2, "{errors}");
    assert_eq!(errors.0[0].line, Some(2));
    assert_eq!(errors.0[1].line, Some(4));
}

#[test]
fn line_column_counts_from_one() {
    assert_eq!(line_column("ab\ncd", 0), (1, 1));
    assert_eq!(line_column("ab\ncd", 4), (2, 2));
}

#[test]
fn the_readme_configuration_reference_is_valid() {
    let readme = include_str!("../../README.md");
    let start = readme.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let end = start + readme[start..].find("```").expect("closed");
    let cfg = Config::parse(
        Path::new("/etc/caretaker/caretaker.toml"),
        &readme[start..end],
    )
    .unwrap_or_else(|e| panic!("README's configuration does not parse:\n{e}"));
    assert_eq!(cfg.rules.len(), 1);
    assert_eq!(cfg.schedules.len(), 1);
    assert_eq!(cfg.commands[0].env_labels, vec!["alertname", "severity"]);
    assert!(cfg.databases[0].vacuum.window.is_some());
}

#[test]
fn a_bare_file_name_resolves_against_the_current_folder_absolutely() {
    let cfg = Config::parse(Path::new("caretaker.toml"), EXAMPLE).expect("valid");
    let here = std::env::current_dir().expect("cwd");
    let db = &cfg.databases[0];
    assert_eq!(db.path, here.join("memory.db"));
    assert_eq!(
        db.path.parent(),
        Some(here.as_path()),
        "never the empty path"
    );
    assert_eq!(
        db.backup.as_ref().map(|b| b.dir.clone()),
        Some(here.join("backups"))
    );
}
