//! Putting archived rows back.
//!
//! Restoring is idempotent so an operator can run it again after an
//! interruption, or on an archive whose batch never committed (its rows are
//! still in the database): each row is inserted with `INSERT OR IGNORE`, and a
//! row that was not inserted must already be there under its primary key,
//! otherwise some other constraint refused it and the whole restore is rolled
//! back rather than reported as done. Archives of changed rows (version 2)
//! set each rowid's row back to its archived values, which is idempotent too;
//! a rowid that now holds a row with another primary key (one the
//! application added after the run, which SQLite gave the rowid of a removed
//! row) fails the restore instead of being overwritten.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params_from_iter, Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use super::{read_archive, Archive, ArchiveError, ArchiveValue, RestoreMode};

/// What [`restore_archive`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RestoreArchiveReport {
    /// Rows written back.
    pub inserted: u64,
    /// Rows skipped because a row with the same primary key is there.
    pub already_present: u64,
    /// Rows of a rowid archive (changed rows) set back to their archived values.
    pub reset: u64,
}

impl RestoreArchiveReport {
    fn add(&mut self, other: RestoreArchiveReport) {
        self.inserted += other.inserted;
        self.already_present += other.already_present;
        self.reset += other.reset;
    }
}

/// How long a restore waits for the application's writer lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Inserts the rows of the archive at `archive_path` into the database at
/// `db_path` (which must exist), in one transaction.
pub fn restore_archive(
    db_path: &Path,
    archive_path: &Path,
) -> Result<RestoreArchiveReport, ArchiveError> {
    restore_archives(db_path, &[archive_path.to_path_buf()])
}

/// Restores several archives (the tables of one `tune_patterns` run) in one
/// transaction: all of them or none. Every file is read and checked before
/// the database is opened.
pub fn restore_archives(
    db_path: &Path,
    archive_paths: &[PathBuf],
) -> Result<RestoreArchiveReport, ArchiveError> {
    let archives = archive_paths
        .iter()
        .map(|p| read_archive(p).map(|a| (p.as_path(), a)))
        .collect::<Result<Vec<_>, _>>()?;
    let sql_err = |error| ArchiveError::Sqlite {
        path: db_path.to_path_buf(),
        error,
    };
    let mut conn = open(db_path).map_err(sql_err)?;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql_err)?;
    let mut report = RestoreArchiveReport::default();
    for (path, archive) in &archives {
        report.add(match archive.header.restore {
            RestoreMode::Insert => insert_missing(&tx, db_path, path, archive)?,
            RestoreMode::Rowid => reset_rows(&tx, db_path, path, archive)?,
        });
    }
    tx.commit().map_err(sql_err)?;
    Ok(report)
}

/// Inserts the archived rows whose primary key is missing.
fn insert_missing(
    tx: &Connection,
    db_path: &Path,
    archive_path: &Path,
    archive: &Archive,
) -> Result<RestoreArchiveReport, ArchiveError> {
    let sql_err = |error| ArchiveError::Sqlite {
        path: db_path.to_path_buf(),
        error,
    };
    let table = &archive.header.table;
    let columns = &archive.header.columns;
    let key = primary_key(tx, table).map_err(sql_err)?.ok_or_else(|| {
        ArchiveError::Invalid(format!("no table {table} in {}", db_path.display()))
    })?;
    let key_positions: Vec<usize> = key
        .iter()
        .map(|k| columns.iter().position(|c| c == k))
        .collect::<Option<_>>()
        .ok_or_else(|| {
            ArchiveError::Invalid(format!(
                "{}: the archive's columns {columns:?} lack the primary key {key:?} of {table}",
                archive_path.display()
            ))
        })?;
    let mut report = RestoreArchiveReport::default();
    let names: Vec<String> = columns.iter().map(|c| quote(c)).collect();
    let marks = vec!["?"; columns.len()].join(", ");
    let mut insert = tx
        .prepare(&format!(
            "INSERT OR IGNORE INTO {} ({}) VALUES ({marks})",
            quote(table),
            names.join(", ")
        ))
        .map_err(sql_err)?;
    let condition: Vec<String> = key.iter().map(|k| format!("{} IS ?", quote(k))).collect();
    let mut present = tx
        .prepare(&format!(
            "SELECT EXISTS (SELECT 1 FROM {} WHERE {})",
            quote(table),
            condition.join(" AND ")
        ))
        .map_err(sql_err)?;
    for (i, row) in archive.rows.iter().enumerate() {
        if insert.execute(params_from_iter(row)).map_err(sql_err)? == 1 {
            report.inserted += 1;
            continue;
        }
        let key_values = key_positions.iter().map(|&p| &row[p]);
        let there: bool = present
            .query_row(params_from_iter(key_values), |r| r.get(0))
            .map_err(sql_err)?;
        if !there {
            return Err(ArchiveError::NotRestored {
                archive: archive_path.to_path_buf(),
                row: i + 1,
            });
        }
        report.already_present += 1;
    }
    Ok(report)
}

/// Sets each archived rowid's row back to the archived values, inserting it
/// under its rowid when it is gone. A constraint that refuses a row (another
/// row took its primary key since) fails the whole restore.
fn reset_rows(
    tx: &Connection,
    db_path: &Path,
    archive_path: &Path,
    archive: &Archive,
) -> Result<RestoreArchiveReport, ArchiveError> {
    let sql_err = |error| ArchiveError::Sqlite {
        path: db_path.to_path_buf(),
        error,
    };
    let table = quote(&archive.header.table);
    // The first column is the rowid (checked when the archive was read).
    let columns = &archive.header.columns[1..];
    let names: Vec<String> = columns.iter().map(|c| quote(c)).collect();
    let sets: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(i, n)| format!("{n} = ?{}", i + 2))
        .collect();
    let marks: Vec<String> = (1..=archive.header.columns.len())
        .map(|i| format!("?{i}"))
        .collect();
    let mut update = tx
        .prepare(&format!(
            "UPDATE {table} SET {} WHERE rowid = ?1",
            sets.join(", ")
        ))
        .map_err(sql_err)?;
    let mut insert = tx
        .prepare(&format!(
            "INSERT INTO {table} (rowid, {}) VALUES ({})",
            names.join(", "),
            marks.join(", ")
        ))
        .map_err(sql_err)?;
    // The declared key, to tell a row the run changed from one that took a
    // removed row's rowid since (a table without one is not checked).
    let key: Vec<usize> = declared_key(tx, &archive.header.table)
        .map_err(sql_err)?
        .iter()
        .filter_map(|k| archive.header.columns.iter().position(|c| c == k))
        .collect();
    let key_list: Vec<String> = key
        .iter()
        .map(|&p| quote(&archive.header.columns[p]))
        .collect();
    let mut current_key = tx
        .prepare(&format!(
            "SELECT {} FROM {table} WHERE rowid = ?1",
            if key_list.is_empty() {
                "1".to_string()
            } else {
                key_list.join(", ")
            }
        ))
        .map_err(sql_err)?;
    let mut report = RestoreArchiveReport::default();
    for row in &archive.rows {
        let found: Option<Vec<ArchiveValue>> = current_key
            .query_row([&row[0]], |r| {
                (0..key.len())
                    .map(|i| r.get_ref(i).map(ArchiveValue::from))
                    .collect()
            })
            .optional()
            .map_err(sql_err)?;
        let archived: Vec<ArchiveValue> = key.iter().map(|&p| row[p].clone()).collect();
        let rekeyed = matches!(row[0], ArchiveValue::Integer(r) if archive.header.rekeyed_rowids.contains(&r));
        if found.as_ref().is_some_and(|f| *f != archived) && !rekeyed {
            let json = |v: &[ArchiveValue]| {
                serde_json::Value::Array(v.iter().map(ArchiveValue::to_json).collect())
            };
            return Err(ArchiveError::WouldOverwrite(format!(
                "{}: rowid {} of {} now holds another row (key {}, the archive's is {}), added after the archive was written; restoring would overwrite it, so nothing was restored",
                archive_path.display(),
                row[0].to_json(),
                archive.header.table,
                json(&found.unwrap_or_default()),
                json(&archived),
            )));
        }
        if update.execute(params_from_iter(row)).map_err(sql_err)? == 1 {
            report.reset += 1;
        } else {
            insert.execute(params_from_iter(row)).map_err(sql_err)?;
            report.inserted += 1;
        }
    }
    Ok(report)
}

fn open(path: &Path) -> rusqlite::Result<Connection> {
    // Never create a missing database: restoring into an empty new file
    // would look like success and put the rows where nobody reads them.
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Orphaned embeddings are archived too; with foreign keys enforced they
    // could not be put back as they were.
    conn.pragma_update(None, "foreign_keys", false)?;
    Ok(conn)
}

/// The primary key columns `table` declares (none for a table without one).
fn declared_key(conn: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    conn.prepare("SELECT name FROM pragma_table_info(?1) WHERE pk > 0 ORDER BY pk")?
        .query_map([table], |r| r.get(0))?
        .collect()
}

/// The primary key columns of `table`, or every column when it declares
/// none; `None` when there is no such table.
pub(crate) fn primary_key(conn: &Connection, table: &str) -> rusqlite::Result<Option<Vec<String>>> {
    let mut stmt = conn.prepare("SELECT name, pk FROM pragma_table_info(?1) ORDER BY pk, cid")?;
    let columns: Vec<(String, i64)> = stmt
        .query_map([table], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    if columns.is_empty() {
        return Ok(None);
    }
    let key: Vec<String> = columns
        .iter()
        .filter(|c| c.1 > 0)
        .map(|c| c.0.clone())
        .collect();
    Ok(Some(if key.is_empty() {
        columns.into_iter().map(|c| c.0).collect()
    } else {
        key
    }))
}

/// An SQL identifier, quoted.
pub(crate) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
