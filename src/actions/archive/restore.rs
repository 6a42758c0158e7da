//! Putting archived rows back.
//!
//! Restoring is idempotent so an operator can run it again after an
//! interruption, or on an archive whose batch never committed (its rows are
//! still in the database): each row is inserted with `INSERT OR IGNORE`, and a
//! row that was not inserted must already be there under its primary key,
//! otherwise some other constraint refused it and the whole restore is rolled
//! back rather than reported as done.

use std::path::Path;
use std::time::Duration;

use rusqlite::{params_from_iter, Connection, OpenFlags, TransactionBehavior};

use super::{read_archive, ArchiveError};

/// What [`restore_archive`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RestoreArchiveReport {
    /// Rows written back.
    pub inserted: u64,
    /// Rows skipped because a row with the same primary key is there.
    pub already_present: u64,
}

/// How long a restore waits for the application's writer lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Inserts the rows of the archive at `archive_path` into the database at
/// `db_path` (which must exist), in one transaction.
pub fn restore_archive(
    db_path: &Path,
    archive_path: &Path,
) -> Result<RestoreArchiveReport, ArchiveError> {
    let archive = read_archive(archive_path)?;
    let sql_err = |error| ArchiveError::Sqlite {
        path: db_path.to_path_buf(),
        error,
    };
    let mut conn = open(db_path).map_err(sql_err)?;
    let table = &archive.header.table;
    let columns = &archive.header.columns;
    let key = primary_key(&conn, table).map_err(sql_err)?.ok_or_else(|| {
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
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql_err)?;
    let mut report = RestoreArchiveReport::default();
    {
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
    }
    tx.commit().map_err(sql_err)?;
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

/// The primary key columns of `table`, or every column when it declares
/// none; `None` when there is no such table.
fn primary_key(conn: &Connection, table: &str) -> rusqlite::Result<Option<Vec<String>>> {
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
