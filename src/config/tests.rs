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
    // The documented [database.tune] block spells out the defaults.
    assert_eq!(cfg.databases[0].tune, TuneConfig::default());
}

#[test]
fn tune_settings_are_read_and_checked() {
    let text = "[[database]]\nname = \"a\"\npath = \"a.db\"\n[database.tune]\nenabled = true\n\
                consolidate = false\npromote_min_usage = 50\ndemote_unused_after = \"90d\"\n";
    let cfg = Config::parse(Path::new("/etc/caretaker/caretaker.toml"), text).expect("parses");
    let t = &cfg.databases[0].tune;
    assert!(t.enabled && !t.consolidate && t.promote);
    assert_eq!(t.promote_min_usage, 50);
    assert_eq!(t.demote_unused_after, Duration::from_secs(90 * 86_400));
    assert_eq!(t.clear_max_usage, TuneConfig::default().clear_max_usage);
    let e = only_error(
        "[[database]]\nname = \"a\"\npath = \"a.db\"\n[database.tune]\npromote_step = 2.0\n",
    );
    assert!(e.message.contains("tune.promote_step"), "{e}");
    assert_eq!(e.line, Some(5), "{e}");
    let e = only_error(
        "[[database]]\nname = \"a\"\npath = \"a.db\"\n[database.tune]\npromote_by = 1\n",
    );
    assert!(e.message.contains("promote_by"), "{e}");
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

/// The single error of `text`, which must be refused.
fn only_error(text: &str) -> ConfigError {
    let errors = Config::parse(Path::new("/c.toml"), text).expect_err("refused");
    assert_eq!(errors.0.len(), 1, "{errors}");
    errors.0[0].clone()
}

#[test]
fn durations_beyond_ten_years_are_refused_at_their_position() {
    let e = only_error("[collect]\ntimeout = \"584000000000y\"\n");
    assert_eq!((e.line, e.column), (Some(2), Some(11)), "{e}");
    assert!(e.message.contains("at most 10 years"), "{e}");
    let e = only_error("[responder]\naction_timeout = \"11y\"\n");
    assert_eq!(e.line, Some(2), "{e}");
    let cfg = Config::parse(Path::new("/c.toml"), "[collect]\ntimeout = \"3650d\"\n")
        .expect("ten years is the limit");
    assert_eq!(cfg.collect.timeout, duration::MAX_DURATION);
}

const BACKUP: &str =
    "[[database]]\nname = \"a\"\npath = \"a.db\"\n[database.backup]\ndir = \"b\"\n";

#[test]
fn compression_levels_fit_the_format() {
    for (compression, level, ok) in [
        ("zstd", 1, true),
        ("zstd", 22, true),
        ("zstd", 23, false),
        ("zstd", -3, false),
        ("zstd", 0, false),
        ("gzip", 9, true),
        ("gzip", 1, true),
        ("gzip", 10, false),
        ("gzip", 100, false),
    ] {
        let text = format!("{BACKUP}compression = \"{compression}\"\nlevel = {level}\n");
        match Config::parse(Path::new("/c.toml"), &text) {
            Ok(cfg) if ok => {
                let backup = cfg.databases[0].backup.clone().expect("backup");
                assert_eq!(backup.level, level);
            }
            Err(e) if !ok => {
                assert_eq!((e.0[0].line, e.0[0].column), (Some(7), Some(9)), "{e}");
                assert!(e.0[0].message.contains("backup.level"), "{e}");
            }
            other => panic!("{compression} {level}: {other:?}"),
        }
    }
}

#[test]
fn numbers_out_of_range_are_refused_not_clamped() {
    for (text, line) in [
        (format!("{BACKUP}verify_newest = 0\n"), 6),
        (format!("{BACKUP}verify_newest = -1\n"), 6),
        (
            "[[database]]\nname = \"a\"\npath = \"a.db\"\n[database.prune]\nlow_confidence = 1.5\n"
                .to_string(),
            5,
        ),
        (
            "[[database]]\nname = \"a\"\npath = \"a.db\"\n[database.prune]\nlow_confidence = nan\n"
                .to_string(),
            5,
        ),
        (
            "[[database]]\nname = \"a\"\npath = \"a.db\"\n[database.prune]\nunused_max_usage = -1\n"
                .to_string(),
            5,
        ),
        ("[responder]\nmax_concurrent = 0\n".to_string(), 2),
        ("[responder]\nqueue_size = 0\n".to_string(), 2),
        ("[responder]\nbreaker_max_runs = 0\n".to_string(), 2),
        ("[responder]\nbreaker_failures = 0\n".to_string(), 2),
    ] {
        let e = only_error(&text);
        assert_eq!(e.line, Some(line), "{text}: {e}");
        assert!(e.message.contains("must be between"), "{text}: {e}");
    }
}

#[test]
fn command_env_and_dir_are_checked_and_resolved() {
    let text = "[[command]]\nname = \"c\"\nargv = [\"/bin/true\"]\nenv = { GOOD = \"1\" }\n\n[[command]]\nname = \"d\"\nargv = [\"/bin/true\"]\ndir = \"work\"\n";
    let cfg = Config::parse(Path::new("/etc/caretaker/c.toml"), text).expect("valid");
    assert_eq!(cfg.commands[0].dir, Path::new("/etc/caretaker"));
    assert_eq!(
        cfg.commands[0].env.get("GOOD").map(String::as_str),
        Some("1")
    );
    assert_eq!(cfg.commands[1].dir, Path::new("/etc/caretaker/work"));
    for env in [
        "CARETAKER_DATABASE = \"x\"",
        "\"A-B\" = \"x\"",
        "A = \"x\\u0000\"",
    ] {
        let text =
            format!("[[command]]\nname = \"c\"\nargv = [\"/bin/true\"]\nenv = {{ {env} }}\n");
        let e = only_error(&text);
        assert_eq!(e.line, Some(4), "{env}: {e}");
    }
}

#[test]
fn incremental_snapshots_are_off_by_default_and_take_intervals_down_to_a_second() {
    let cfg = Config::parse(Path::new("/etc/c.toml"), EXAMPLE).expect("valid");
    let backup = cfg.databases[0].backup.as_ref().expect("backup");
    assert_eq!(backup.incremental_interval, None);
    assert_eq!(backup.full_interval, Duration::from_secs(24 * 3600));
    let on = format!("{EXAMPLE}incremental_interval = \"1s\"\nfull_interval = \"6h\"\n");
    let cfg = Config::parse(Path::new("/etc/c.toml"), &on).expect("valid");
    let backup = cfg.databases[0].backup.as_ref().expect("backup");
    assert_eq!(backup.incremental_interval, Some(Duration::from_secs(1)));
    assert_eq!(backup.full_interval, Duration::from_secs(6 * 3600));
    let fast = format!("{EXAMPLE}incremental_interval = \"500ms\"\n");
    let err = Config::parse(Path::new("/etc/c.toml"), &fast).expect_err("too fast");
    assert!(format!("{err:?}").contains("at least 1s"), "{err:?}");
}
