//! Tests of discovery's pure parts: captures, templates, names, collisions.

use super::*;

fn m(path: &str, captures: &[&str]) -> Match {
    Match {
        path: PathBuf::from(path),
        captures: captures.iter().map(|c| c.to_string()).collect(),
    }
}

#[test]
fn wildcards_capture_what_they_matched() {
    let re = pattern("/srv/agents/*/.swarm/memory.db").expect("pattern");
    let caps = re
        .captures("/srv/agents/alpha/.swarm/memory.db")
        .expect("match");
    assert_eq!(&caps[1], "alpha");
    assert!(re.captures("/srv/agents/a/b/.swarm/memory.db").is_none());
    let re = pattern("/d/**/m?.db").expect("pattern");
    let caps = re.captures("/d/x/y/m1.db").expect("match");
    assert_eq!((&caps[1], &caps[2]), ("x/y", "1"));
    assert!(pattern("/d/[ab").is_err());
}

#[test]
fn templates_fill_captures_path_and_parent() {
    let found = m("/srv/a/.swarm/memory.db", &["a"]);
    assert_eq!(fill("{1}", &found).expect("fill"), "a");
    assert_eq!(fill("/b/{1}/x", &found).expect("fill"), "/b/a/x");
    assert_eq!(fill("{parent}", &found).expect("fill"), "/srv/a/.swarm");
    assert_eq!(
        fill("{path}", &found).expect("fill"),
        "/srv/a/.swarm/memory.db"
    );
    assert!(fill("{2}", &found).is_err());
    assert!(fill("{0}", &found).is_err());
    assert!(fill("{1", &found).is_err());
}

#[test]
fn names_are_sanitised_to_the_label_alphabet() {
    assert_eq!(sanitise("team a/b"), "team_a_b");
    assert_eq!(sanitise(".hidden"), "_hidden");
    assert_eq!(sanitise("ok-1.2_x"), "ok-1.2_x");
}

#[test]
fn colliding_names_are_all_refused_and_explicit_paths_win() {
    let p = PathBuf::from;
    let found = vec![
        (0, "a".to_string(), p("/x/a b/m.db")),
        (0, "a".to_string(), p("/x/a_b/m.db")),
        (0, "c".to_string(), p("/x/c/m.db")),
        (0, "mine".to_string(), p("/x/mine/m.db")),
        (0, "memory".to_string(), p("/x/memory/m.db")),
    ];
    let explicit = vec![
        ("listed".to_string(), p("/x/mine/m.db")),
        ("memory".to_string(), p("/elsewhere.db")),
    ];
    let (taken, reports) = assign(&found, &explicit, &["g".to_string()]);
    assert_eq!(taken, vec![(0, "c".to_string(), p("/x/c/m.db"))]);
    assert_eq!(reports[0].databases.len(), 1);
    assert_eq!(reports[0].refused.len(), 3, "{:?}", reports[0].refused);
}
