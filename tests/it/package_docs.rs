//! `caretaker generate-docs`: the manual pages and completions the Debian
//! package installs (scripts/check-package.sh installs them and reads them
//! with man and bash).

use crate::common::caretaker;
use std::collections::BTreeSet;

/// The subcommands `caretaker --help` lists (without `help`).
fn listed_subcommands() -> BTreeSet<String> {
    let out = caretaker().arg("--help").output().expect("run --help");
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).expect("utf-8");
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

#[test]
fn generate_docs_writes_a_page_per_listed_subcommand_and_three_completions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = caretaker()
        .arg("generate-docs")
        .arg("--out")
        .arg(dir.path())
        .output()
        .expect("run");
    assert!(out.status.success(), "{out:?}");

    let listed = listed_subcommands();
    assert!(listed.contains("check-config"), "{listed:?}");
    let mut expected: BTreeSet<String> = listed
        .iter()
        .map(|sub| format!("caretaker-{sub}.1"))
        .collect();
    expected.insert("caretaker.1".to_owned());
    let pages: BTreeSet<String> = std::fs::read_dir(dir.path().join("man"))
        .expect("man folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(pages, expected);

    let root = std::fs::read_to_string(dir.path().join("man/caretaker.1")).expect("page");
    assert!(
        root.starts_with(".ie"),
        "roff: {}",
        &root[..40.min(root.len())]
    );
    for sub in &listed {
        // roff escapes hyphens: the reference to caretaker-run(1).
        let reference = format!("caretaker-{sub}(1)").replace('-', "\\-");
        assert!(root.contains(&reference), "caretaker.1 lacks {reference}");
    }

    for name in ["bash/caretaker", "zsh/_caretaker", "fish/caretaker.fish"] {
        let script =
            std::fs::read_to_string(dir.path().join("completions").join(name)).expect(name);
        for sub in &listed {
            assert!(script.contains(sub.as_str()), "{name} does not offer {sub}");
        }
        for hidden in ["generate-docs", "collect"] {
            assert!(!script.contains(hidden), "{name} offers hidden {hidden}");
        }
    }
    // Every path written is printed, one a line.
    let printed = String::from_utf8(out.stdout).expect("utf-8");
    assert_eq!(printed.lines().count(), expected.len() + 3, "{printed}");
}

#[test]
fn generate_docs_is_not_listed_in_help() {
    let listed = listed_subcommands();
    assert!(!listed.contains("generate-docs"), "{listed:?}");
    assert!(!listed.contains("collect"), "{listed:?}");
}

#[test]
fn generate_docs_into_an_unwritable_place_fails_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").expect("write");
    let out = caretaker()
        .arg("generate-docs")
        .arg("--out")
        .arg(&file)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("writing"), "{stderr}");
    assert_eq!(std::fs::read(&file).expect("read"), b"");
}
