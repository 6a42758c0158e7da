//! SQLite's own consistency checks, and what counts as damage.
//!
//! `integrity_check` reads every page of the database (about 14 s for 1.3 GB
//! here), so the integrity collector runs it hours apart, on a read-only
//! connection that does not block the application's writers; `quick_check`
//! is about ten times faster. The `integrity_check` action, the backup
//! pipeline, backup verification and restore all ask the same questions.

use std::path::Path;
use std::time::Instant;

use rusqlite::{Connection, ErrorCode};

use super::sqlite::open_monitor;
use crate::config::IntegrityMode;

/// The outcome of checking one database.
#[derive(Debug, Clone, PartialEq)]
pub struct IntegrityReport {
    /// What the check found wrong; empty when the database is sound. A damaged
    /// page that stops the check is itself a problem, after those found before it.
    pub problems: Vec<String>,
    /// Rows of `PRAGMA foreign_key_check`; `None` when it could not run to its end.
    pub foreign_key_violations: Option<u64>,
}

impl IntegrityReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Whether an error says the file's content is damaged (a finding of the
/// check), rather than that the check could not run: a busy or missing file,
/// the deadline. SQLite stops a check with `SQLITE_CORRUPT` on a page it
/// cannot follow, so the worst damage would otherwise look like no check.
fn is_damage(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
    )
}

/// Runs the check on `path`: the integrity collector's and the
/// `integrity_check` action's.
///
/// Problems found are always reported, even when a later step fails; an error
/// is returned only when the check could not run (or was cut short by the
/// deadline or a lock) before finding anything.
pub fn check(
    path: &Path,
    mode: IntegrityMode,
    deadline: Instant,
) -> rusqlite::Result<IntegrityReport> {
    let conn = match open_monitor(path, deadline) {
        Ok(conn) => conn,
        Err(e) if is_damage(&e) => {
            return Ok(IntegrityReport {
                problems: vec![e.to_string()],
                foreign_key_violations: None,
            })
        }
        Err(e) => return Err(e),
    };
    let mut problems = Vec::new();
    let mut cut_short = None;
    match problems_into(&conn, mode, &mut problems) {
        Ok(()) => {}
        Err(e) if is_damage(&e) => problems.push(e.to_string()),
        Err(e) => cut_short = Some(e),
    }
    let mut foreign_key_violations = None;
    if cut_short.is_none() {
        let count = conn.query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| {
            r.get::<_, i64>(0)
        });
        match count {
            Ok(n) => foreign_key_violations = Some(u64::try_from(n).unwrap_or(0)),
            Err(e) if is_damage(&e) => problems.push(format!("foreign_key_check: {e}")),
            Err(e) => cut_short = Some(e),
        }
    }
    match cut_short {
        Some(e) if problems.is_empty() => Err(e),
        _ => Ok(IntegrityReport {
            problems,
            foreign_key_violations,
        }),
    }
}

/// Appends the check's messages to `problems` as they come (nothing for a
/// sound database), so an error that stops the check keeps those before it.
fn problems_into(
    conn: &Connection,
    mode: IntegrityMode,
    problems: &mut Vec<String>,
) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare(pragma_of(mode))?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let message: String = row.get(0)?;
        if message != "ok" {
            problems.push(message);
        }
    }
    Ok(())
}

fn pragma_of(mode: IntegrityMode) -> &'static str {
    match mode {
        IntegrityMode::Quick => "PRAGMA quick_check(100)",
        IntegrityMode::Full => "PRAGMA integrity_check(100)",
    }
}

/// Runs `quick_check` or `integrity_check` (at most 100 messages); exactly
/// `["ok"]` when the database is sound. Used on backups and restored files.
pub fn problems(conn: &Connection, mode: IntegrityMode) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(pragma_of(mode))?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::time::Duration;

    /// A database whose schema page (page 1) has garbage after its header:
    /// SQLite cannot even prepare the check.
    fn damaged_schema(dir: &Path) -> PathBuf {
        let path = dir.join("schema.db");
        let conn = Connection::open(&path).expect("create");
        conn.execute_batch("CREATE TABLE t (a TEXT PRIMARY KEY); INSERT INTO t VALUES ('x');")
            .expect("fill");
        drop(conn);
        let mut bytes = std::fs::read(&path).expect("read");
        // Page 1: the 100-byte file header, then the schema table's b-tree page.
        bytes[108..4096].fill(0xa5);
        std::fs::write(&path, bytes).expect("damage");
        path
    }

    #[test]
    fn a_schema_too_damaged_to_prepare_the_check_is_a_problem() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = damaged_schema(dir.path());
        let deadline = Instant::now() + Duration::from_secs(30);
        for mode in [IntegrityMode::Quick, IntegrityMode::Full] {
            let report = check(&path, mode, deadline).expect("a verdict, not an error");
            assert!(!report.ok(), "{report:?}");
            assert_eq!(report.foreign_key_violations, None, "{report:?}");
        }
    }

    #[test]
    fn a_missing_file_is_no_verdict() {
        let dir = tempfile::tempdir().expect("tempdir");
        let deadline = Instant::now() + Duration::from_secs(30);
        let missing = dir.path().join("missing.db");
        assert!(check(&missing, IntegrityMode::Quick, deadline).is_err());
    }
}
