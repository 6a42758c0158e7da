//! Unit tests of the archive format: values, time text, names and damage.

use std::time::{Duration, UNIX_EPOCH};

use rusqlite::Connection;

use super::*;

fn header(columns: usize) -> ArchiveHeader {
    let at = Utc::from_system(UNIX_EPOCH + Duration::from_secs(1_793_502_245));
    let cols = (0..columns).map(|i| format!("c{i}")).collect();
    ArchiveHeader::new("memory", "patterns", cols, at, "prune")
}

#[test]
fn utc_text_matches_sqlite() {
    let conn = Connection::open_in_memory().expect("open");
    for secs in [
        -86_400 * 800 - 1,
        -1,
        0,
        59,
        951_782_400, // 2000-02-29
        1_709_210_096,
        4_102_444_799,
        253_402_300_799, // 9999-12-31 23:59:59
    ] {
        let want: String = conn
            .query_row("SELECT datetime(?1, 'unixepoch')", [secs], |r| r.get(0))
            .expect("datetime");
        assert_eq!(Utc::from_unix_seconds(secs).sqlite_text(), want, "{secs}");
    }
    assert_eq!(Utc::from_unix_seconds(0).rfc3339(), "1970-01-01T00:00:00Z");
    let t = UNIX_EPOCH - Duration::from_millis(1500);
    assert_eq!(Utc::from_system(t), Utc::from_unix_seconds(-2));
    assert_eq!(
        Utc::from_unix_seconds(100).minus(Duration::from_secs(30)),
        Utc::from_unix_seconds(70)
    );
}

#[test]
fn every_value_comes_back_as_it_was() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rows = vec![
        vec![
            ArchiveValue::Null,
            ArchiveValue::Integer(i64::MIN),
            ArchiveValue::Integer(i64::MAX),
            ArchiveValue::Real(1.0),
            ArchiveValue::Real(-0.0),
            ArchiveValue::Real(1e300),
            ArchiveValue::Real(f64::INFINITY),
            ArchiveValue::Real(f64::NEG_INFINITY),
        ],
        vec![
            ArchiveValue::Text("multi\nline \"quoted\" ✓ \u{0}".into()),
            ArchiveValue::TextBytes(vec![0xff, 0xfe, b'a']),
            ArchiveValue::Blob(vec![]),
            ArchiveValue::Blob((0..=255).collect()),
            ArchiveValue::Text(String::new()),
            ArchiveValue::Real(0.1 + 0.2),
            ArchiveValue::Integer(0),
            ArchiveValue::Text("{\"hex\":\"00\"}".into()),
        ],
    ];
    let written = write_archive(dir.path(), &header(8), &rows).expect("write");
    assert_eq!(written.rows, 2);
    let name = written
        .path
        .file_name()
        .and_then(|n| n.to_str())
        .expect("name");
    assert_eq!(name, "patterns-20261101T030405Z-prune.jsonl.zst");
    let back = read_archive(&written.path).expect("read");
    assert_eq!(back.header, header(8));
    assert_eq!(back.rows, rows);
    // -0.0 == 0.0 for PartialEq; check the sign survived too.
    assert!(matches!(back.rows[0][4], ArchiveValue::Real(f) if f.is_sign_negative()));
}

#[test]
fn names_never_collide_and_temporaries_are_not_archives() {
    let dir = tempfile::tempdir().expect("tempdir");
    let row = vec![vec![ArchiveValue::Integer(1)]];
    let a = write_archive(dir.path(), &header(1), &row).expect("first");
    let b = write_archive(dir.path(), &header(1), &row).expect("second");
    assert_ne!(a.path, b.path);
    assert!(b.path.to_string_lossy().ends_with("-prune-2.jsonl.zst"));
    let temp = dir
        .path()
        .join("patterns-20261101T030405Z-prune-3.jsonl.zst.tmp");
    fs::copy(&a.path, &temp).expect("copy");
    let mut want = vec![a.path.clone(), b.path.clone()];
    want.sort();
    assert_eq!(list_archives(dir.path()).expect("list"), want);
    assert!(matches!(
        read_archive(&temp),
        Err(ArchiveError::Temporary(_))
    ));
    // The next write skips the name whose temporary exists.
    let c = write_archive(dir.path(), &header(1), &row).expect("third");
    assert!(c.path.to_string_lossy().ends_with("-prune-4.jsonl.zst"));
    assert_eq!(
        remove_stale_temporaries(dir.path()).expect("clean"),
        vec![temp.clone()]
    );
    assert!(!temp.exists());
    assert_eq!(
        list_archives(&dir.path().join("missing")).expect("none"),
        Vec::<PathBuf>::new()
    );
}

#[test]
fn unsafe_names_and_ragged_rows_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut h = header(1);
    h.table = "../etc".into();
    assert!(matches!(
        write_archive(dir.path(), &h, &[]),
        Err(ArchiveError::Invalid(_))
    ));
    let ragged = vec![vec![ArchiveValue::Null, ArchiveValue::Null]];
    assert!(matches!(
        write_archive(dir.path(), &header(1), &ragged),
        Err(ArchiveError::Invalid(_))
    ));
    assert!(list_archives(dir.path()).expect("list").is_empty());
}

/// Compresses `text` as an archive file would be.
fn compressed(text: &str) -> Vec<u8> {
    zstd::encode_all(text.as_bytes(), 3).expect("compress")
}

#[test]
fn cut_or_altered_archives_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rows: Vec<Vec<ArchiveValue>> = (0..500)
        .map(|i| {
            vec![
                ArchiveValue::Integer(i),
                ArchiveValue::Text(format!("row {i}")),
            ]
        })
        .collect();
    let a = write_archive(dir.path(), &header(2), &rows).expect("write");
    let bytes = fs::read(&a.path).expect("read");
    let cut = dir.path().join("cut.jsonl.zst");
    for keep in [0, 5, bytes.len() / 2, bytes.len() - 5, bytes.len() - 1] {
        fs::write(&cut, &bytes[..keep]).expect("write cut");
        let err = read_archive(&cut).expect_err("a cut archive is refused");
        assert!(
            matches!(
                err,
                ArchiveError::Incomplete { .. } | ArchiveError::Damaged { .. }
            ),
            "{keep}: {err}"
        );
    }
    // Cut at a line boundary, then compressed properly: only the trailer tells.
    let text =
        String::from_utf8(zstd::decode_all(bytes.as_slice()).expect("decode")).expect("utf8");
    let lines: Vec<&str> = text.lines().collect();
    let without_trailer = format!("{}\n", lines[..lines.len() - 1].join("\n"));
    fs::write(&cut, compressed(&without_trailer)).expect("write");
    let err = read_archive(&cut).expect_err("no trailer");
    assert!(
        err.to_string().contains("incomplete archive (no trailer)"),
        "{err}"
    );
    let fewer = format!(
        "{}\n{}\n",
        lines[..lines.len() - 2].join("\n"),
        lines[lines.len() - 1]
    );
    fs::write(&cut, compressed(&fewer)).expect("write");
    assert!(matches!(
        read_archive(&cut),
        Err(ArchiveError::Incomplete { .. })
    ));
    let altered = text.replacen("row 7\"", "row 8\"", 1);
    fs::write(&cut, compressed(&altered)).expect("write");
    let err = read_archive(&cut).expect_err("altered");
    assert!(err.to_string().contains("SHA-256"), "{err}");
    fs::write(&cut, compressed(&text.replacen("[0,", "[{\"x\":1},", 1))).expect("write");
    assert!(matches!(
        read_archive(&cut),
        Err(ArchiveError::Damaged { line: 2, .. })
    ));
    let mut flipped = bytes.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x55;
    fs::write(&cut, &flipped).expect("write");
    assert!(
        read_archive(&cut).is_err(),
        "zstd's checksum catches flipped bits"
    );
}
