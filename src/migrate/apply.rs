//! Running one migration file in one transaction, on the test copy or on the
//! live database, and recording it in `migrations_applied` in that same
//! transaction; making and removing the test copy; the checks on the copy.
//!
//! Statements run one at a time (rusqlite's `Batch`), so a failure names the
//! statement. Files written for the `sqlite3` shell wrap themselves in
//! `BEGIN` ... `COMMIT`: caretaker already runs each file in its own
//! transaction, so those two statements are passed over, and a `ROLLBACK`
//! in a file is refused. Foreign keys are turned off while a file runs (as
//! SQLite's own procedure for schema changes says; the bundled SQLite has
//! them on by default, and with them on the seed's rollback, which drops
//! and rebuilds `patterns`, would cascade-delete every embedding), and
//! `foreign_key_check` runs before the commit instead: a table rebuilt in
//! steps is judged by where it ends, and a violation the file added rolls
//! it back (those already there before it are the application's, and
//! reported by the integrity collector).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use rusqlite::fallible_iterator::FallibleIterator;
use rusqlite::{params, Batch, Connection, ErrorCode, OpenFlags, TransactionBehavior};

use super::files::MigrationFile;
use super::MigrateError;
use crate::config::IntegrityMode;
use crate::metrics::unix_seconds;
use crate::store::{integrity, private, sqlite::open_monitor};

/// How a run marks its files in `migrations_applied`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Success,
    RolledBack,
}

impl Mark {
    pub fn as_str(self) -> &'static str {
        match self {
            Mark::Success => "success",
            Mark::RolledBack => "rolled_back",
        }
    }
}

/// Which database a file is applied to, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Copy,
    Live,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            Target::Copy => "the test copy",
            Target::Live => "the live database",
        })
    }
}

/// Applies `file` to `conn` in one write transaction and records it as
/// `mark`; nothing of it stays when any step fails. `busy_timeout` is the
/// connection's, for the message when the write lock never came.
pub fn apply(
    conn: &mut Connection,
    target: Target,
    file: &MigrationFile,
    mark: Mark,
    now: SystemTime,
    busy_timeout: Duration,
) -> Result<(), MigrateError> {
    let shown = shown_name(&file.path);
    let busy = |e: rusqlite::Error| match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => MigrateError::Busy {
            file: shown.clone(),
            timeout: busy_timeout,
        },
        _ => MigrateError::Sqlite(e),
    };
    // A no-op inside a transaction: set before it starts.
    conn.pragma_update(None, "foreign_keys", false)?;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(busy)?;
    let before = violations(&tx)?;
    run_statements(&tx, &shown, &file.sql, busy_timeout)?;
    foreign_key_check(&tx, &before, &shown, target)?;
    record(&tx, &file.name, mark, now).map_err(busy)?;
    tx.commit().map_err(busy)
}

fn shown_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Runs every statement of `sql`, in order, in the caller's transaction.
fn run_statements(
    conn: &Connection,
    file: &str,
    sql: &str,
    busy_timeout: Duration,
) -> Result<(), MigrateError> {
    let failed = |statement: &str, e: rusqlite::Error| match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => MigrateError::Busy {
            file: file.to_string(),
            timeout: busy_timeout,
        },
        _ => MigrateError::Statement {
            file: file.to_string(),
            statement: statement.trim().to_string(),
            message: e.to_string(),
        },
    };
    let mut batch = Batch::new(conn, sql);
    // Where the next statement's text starts, for a statement that does not
    // even prepare (its text is then up to the next semicolon).
    let mut tail = 0;
    loop {
        let mut stmt = match batch.next() {
            Ok(Some(stmt)) => stmt,
            Ok(None) => return Ok(()),
            Err(e) => return Err(failed(next_statement(&sql[tail..]), e)),
        };
        let text = stmt.expanded_sql().unwrap_or_default();
        if let Some(at) = sql[tail..].find(text.as_str()) {
            tail += at + text.len();
        }
        match first_keyword(&text).as_str() {
            "BEGIN" | "COMMIT" | "END" => continue,
            "ROLLBACK" => {
                return Err(MigrateError::Statement {
                    file: file.to_string(),
                    statement: text.trim().to_string(),
                    message: "a migration may not end its own transaction with ROLLBACK".into(),
                })
            }
            _ => {}
        }
        let mut rows = stmt.raw_query();
        loop {
            match rows.next() {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => return Err(failed(&text, e)),
            }
        }
    }
}

/// The text from `rest` to its next semicolon (or its end).
fn next_statement(rest: &str) -> &str {
    let rest = rest.trim_start();
    rest.find(';').map_or(rest, |i| &rest[..=i])
}

/// A statement's first word in capitals, after whitespace and comments.
fn first_keyword(text: &str) -> String {
    let mut rest = text.trim_start();
    loop {
        if let Some(after) = rest.strip_prefix("--") {
            rest = after.find('\n').map_or("", |i| &after[i..]).trim_start();
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after
                .find("*/")
                .map_or("", |i| &after[i + 2..])
                .trim_start();
        } else {
            break;
        }
    }
    rest.chars()
        .take_while(char::is_ascii_alphabetic)
        .collect::<String>()
        .to_ascii_uppercase()
}

/// One row of `PRAGMA foreign_key_check`: table, rowid, parent, key number.
type Violation = (String, Option<i64>, String, i64);

/// Every row that violates a foreign key now.
fn violations(conn: &Connection) -> rusqlite::Result<BTreeSet<Violation>> {
    let mut stmt =
        conn.prepare("SELECT \"table\", rowid, parent, fkid FROM pragma_foreign_key_check")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    rows.collect()
}

/// Refuses the file when rows violate a foreign key that did not before it
/// (up to three named). Violations already there are the application's
/// (`caretaker_database_foreign_key_violations` reports them); a migration
/// must not add to them.
fn foreign_key_check(
    conn: &Connection,
    before: &BTreeSet<Violation>,
    file: &str,
    target: Target,
) -> Result<(), MigrateError> {
    let after = violations(conn)?;
    let new: Vec<&Violation> = after.difference(before).collect();
    if new.is_empty() {
        return Ok(());
    }
    let examples: Vec<String> = new
        .iter()
        .take(3)
        .map(|(table, rowid, parent, _)| {
            let row = rowid.map_or_else(String::new, |id| format!(" row {id}"));
            format!("{table}{row} (parent {parent})")
        })
        .collect();
    Err(MigrateError::Check {
        file: file.to_string(),
        check: "foreign_key_check",
        target,
        detail: format!(
            "{} rows newly violate a foreign key, e.g. {}",
            new.len(),
            examples.join(", ")
        ),
    })
}

/// Records `name` as `mark` (the seed's table is created if missing).
fn record(tx: &Connection, name: &str, mark: Mark, now: SystemTime) -> rusqlite::Result<()> {
    let at = unix_seconds(now).floor();
    if mark == Mark::Success {
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS migrations_applied (
               id INTEGER PRIMARY KEY AUTOINCREMENT,
               filename TEXT NOT NULL UNIQUE,
               applied_at TEXT NOT NULL,
               status TEXT NOT NULL DEFAULT 'success')",
        )?;
    }
    // An update first: a migration rolled back earlier keeps its one row
    // (`filename` is UNIQUE in the seed's schema).
    let updated = tx.execute(
        "UPDATE migrations_applied SET status = ?2, applied_at = datetime(?3, 'unixepoch')
         WHERE filename = ?1",
        params![name, mark.as_str(), at],
    )?;
    if updated == 0 {
        tx.execute(
            "INSERT INTO migrations_applied (filename, applied_at, status)
             VALUES (?1, datetime(?3, 'unixepoch'), ?2)",
            params![name, mark.as_str(), at],
        )?;
    }
    Ok(())
}

/// A private copy of the live database beside it (same filesystem, 0600),
/// removed with its journal files when dropped.
pub struct Scratch {
    path: PathBuf,
    conn: Option<Connection>,
}

impl Scratch {
    /// Copies `database` in one step of SQLite's backup API (a consistent
    /// snapshot; the application keeps writing meanwhile).
    pub fn copy_of(database: &Path, deadline: Instant) -> Result<Scratch, MigrateError> {
        let name = database
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let path = database.with_file_name(format!(
            ".{name}.caretaker-migrate-{}.tmp",
            std::process::id()
        ));
        drop(private::create_new(&path).map_err(|e| {
            MigrateError::Refused(format!(
                "cannot create the test copy {} beside the database: {e}",
                path.display()
            ))
        })?);
        let mut scratch = Scratch { path, conn: None };
        let source = open_monitor(database, deadline)?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut copy = Connection::open_with_flags(&scratch.path, flags)?;
        {
            let backup = rusqlite::backup::Backup::new(&source, &mut copy)?;
            match backup.step(-1)? {
                rusqlite::backup::StepResult::Done => {}
                other => {
                    return Err(MigrateError::Refused(format!(
                    "copying the database for the test run did not finish ({other:?}); try again"
                )))
                }
            }
        }
        // Rollback journal: the copy needs no -wal file beside it.
        copy.query_row("PRAGMA journal_mode = DELETE", [], |_| Ok(()))?;
        scratch.conn = Some(copy);
        Ok(scratch)
    }

    /// Removes the copies (and their journals) that runs which no longer
    /// exist left beside `database`: a run killed mid-way cannot remove its
    /// own. A copy whose process is alive belongs to a running migration.
    pub fn remove_stale(database: &Path) -> std::io::Result<usize> {
        let name = database
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let prefix = format!(".{name}.caretaker-migrate-");
        let folder = match database.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let mut removed = 0;
        for entry in std::fs::read_dir(folder)? {
            let entry = entry?;
            let file = entry.file_name().to_string_lossy().into_owned();
            let Some(rest) = file.strip_prefix(&prefix) else {
                continue;
            };
            let Some((pid, _)) = rest.split_once(".tmp") else {
                continue;
            };
            let alive = pid
                .parse::<u32>()
                .map_or(true, |pid| Path::new(&format!("/proc/{pid}")).exists());
            if !alive {
                std::fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// The copy's connection.
    pub fn conn(&mut self) -> Result<&mut Connection, MigrateError> {
        self.conn
            .as_mut()
            .ok_or_else(|| MigrateError::Refused("the test copy is closed".into()))
    }

    /// `integrity_check` on the copy, after `file` was applied to it (its
    /// `foreign_key_check` ran before the commit, in [`apply`]).
    pub fn check(&mut self, file: &MigrationFile) -> Result<(), MigrateError> {
        let shown = shown_name(&file.path);
        let conn = self.conn()?;
        let problems = integrity::problems(conn, IntegrityMode::Full)?;
        if problems != ["ok"] {
            return Err(MigrateError::Check {
                file: shown,
                check: "integrity_check",
                target: Target::Copy,
                detail: problems.join("; "),
            });
        }
        Ok(())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        drop(self.conn.take());
        for suffix in ["", "-journal", "-wal", "-shm"] {
            let mut p = self.path.as_os_str().to_owned();
            p.push(suffix);
            match std::fs::remove_file(PathBuf::from(&p)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    tracing::warn!(file = %self.path.display(), error = %e, "could not remove the test copy")
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_skip_comments_and_statements_stop_at_semicolons() {
        assert_eq!(
            first_keyword("  -- note\n/* x */ begin transaction"),
            "BEGIN"
        );
        assert_eq!(first_keyword("COMMIT"), "COMMIT");
        assert_eq!(
            first_keyword("CREATE TRIGGER t BEGIN SELECT 1; END"),
            "CREATE"
        );
        assert_eq!(next_statement("\n  SELEC 1;\nSELECT 2;"), "SELEC 1;");
        assert_eq!(next_statement(" SELEC 1"), "SELEC 1");
    }
}
