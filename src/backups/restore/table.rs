//! `caretaker restore --table=NAME`: seed 001's "Partial Recovery", one
//! table brought back from a backup into the live database while the rest of
//! it, and the application, carry on.
//!
//! The seed attaches the backup and runs `INSERT OR REPLACE` from it: the
//! rows it replaces are gone for good, a foreign key it breaks is found (if
//! ever) by the application, and a cascade or trigger may change other
//! tables. Here the backup is chosen and checked exactly as for a full
//! restore (checksum, decompression beside the database, `integrity_check`),
//! then attached, and one write transaction
//!
//! 1. reads the table's current rows (for the archive);
//! 2. `replace`: deletes them and copies the backup's rows in; `merge`:
//!    copies only the backup's rows whose primary key is missing;
//! 3. checks that nothing but those rows changed (foreign keys are not
//!    enforced on this connection, so nothing cascades, and a trigger that
//!    wrote elsewhere fails the restore), and that no foreign key of the
//!    table or into it is broken that was not broken before;
//! 4. writes the current rows to an archive (durably), and commits.
//!
//! It holds the database's maintenance lock throughout, as every mutating
//! action does. Any failure rolls the whole transaction back, so the
//! database is as it was; `restore-archive` puts archived rows back.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use rusqlite::Connection;

use super::steps::Temporary;
use super::{choose, io, real_location, Chosen, Folder, RestoreChoice, RestoreError};
use crate::actions::archive::sweep::{begin_immediate, open_writer};
use crate::actions::archive::{
    primary_key, quote, write_archive, ArchiveHeader, ArchiveValue, Utc,
};
use crate::config::DatabaseConfig;
use crate::progress::Reporter;
use crate::responder::lock::lock_file;

/// How the backup's rows meet the current ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum TableMode {
    /// The table becomes the backup's table.
    #[default]
    Replace,
    /// Only the backup's rows whose primary key is missing are inserted.
    Merge,
}

impl TableMode {
    /// The `--mode` word.
    pub fn as_str(self) -> &'static str {
        match self {
            TableMode::Replace => "replace",
            TableMode::Merge => "merge",
        }
    }
}

/// What a one-table restore did.
#[derive(Debug, Clone, PartialEq)]
pub struct TableRestoreReport {
    pub backup: PathBuf,
    pub skipped: Vec<(PathBuf, String)>,
    pub deleted: u64,
    pub inserted: u64,
    /// Rows written to the archive: every row the table had.
    pub archived: u64,
    /// The table's rows before the restore (none when it was empty).
    pub archive: Option<PathBuf>,
    /// With [`RestoreChoice::At`]: when the state the table came from was
    /// taken.
    pub taken: Option<SystemTime>,
}

/// How long the restore waits for the application's writer lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
const ATTACHED: &str = "caretaker_backup";
/// How long it waits for another caretaker process's maintenance lock.
const LOCK_WAIT: Duration = Duration::from_secs(5);

/// Restores `table` of `db` from the chosen backup, at `now` (archive names),
/// showing the decompression and check on `progress`.
pub fn restore_table(
    db: &DatabaseConfig,
    choice: RestoreChoice,
    table: &str,
    mode: TableMode,
    now: SystemTime,
    progress: &Reporter,
) -> Result<TableRestoreReport, RestoreError> {
    let refuse = |m: String| Err(RestoreError::Table(m));
    if table.starts_with("sqlite_") {
        return refuse(format!("{table} is SQLite's own table"));
    }
    // No other caretaker action (prune, tune, a migration) runs meanwhile.
    let _lock = lock_file(&db.path, LOCK_WAIT)
        .map_err(|e| RestoreError::Table(format!("maintenance lock: {e}")))?;
    let (folder_path, name) = real_location(&db.path)?;
    let real = folder_path.join(&name);
    let folder = Folder::open(&folder_path).map_err(io("opening", &folder_path))?;
    let mut temp_name = OsString::from(".");
    temp_name.push(&name);
    temp_name.push(".table-restore.tmp");
    let temp_path = folder.join(&temp_name);
    folder
        .remove(&temp_name)
        .map_err(io("removing", &temp_path))?;
    let Chosen {
        backup,
        file,
        skipped,
        taken,
    } = choose(db, &folder, &temp_name, choice, progress)?;
    drop(file);
    // Removes the decompressed backup however the restore ends (after the
    // connection that attached it, which is dropped first).
    let _temp = Temporary {
        folder: &folder,
        name: &temp_name,
    };

    let failed = |e: rusqlite::Error| RestoreError::Table(format!("sqlite: {e}"));
    let conn = open_writer(&real, BUSY_TIMEOUT).map_err(|e| RestoreError::Table(e.to_string()))?;
    conn.execute(
        &format!("ATTACH DATABASE ?1 AS {ATTACHED}"),
        [temp_path.to_string_lossy()],
    )
    .map_err(failed)?;
    let live_cols = columns(&conn, "main", table).map_err(failed)?;
    let backup_cols = columns(&conn, ATTACHED, table).map_err(failed)?;
    if live_cols.is_empty() {
        return refuse(format!("the database has no table {table}"));
    }
    if backup_cols.is_empty() {
        return refuse(format!("{} has no table {table}", backup.display()));
    }
    let (mut a, mut b) = (live_cols.clone(), backup_cols.clone());
    a.sort();
    b.sort();
    if a != b {
        return refuse(format!(
            "{table} has columns {live_cols:?} here and {backup_cols:?} in {}; migrate one of them first",
            backup.display()
        ));
    }
    let key = primary_key(&conn, table)
        .map_err(failed)?
        .unwrap_or_default();
    if mode == TableMode::Merge && !has_declared_key(&conn, table).map_err(failed)? {
        return refuse(format!(
            "{table} declares no primary key, so merge cannot tell which rows are missing"
        ));
    }

    let tx =
        begin_immediate(&conn, BUSY_TIMEOUT).map_err(|e| RestoreError::Table(e.to_string()))?;
    let violations_before = violations(&tx, table).map_err(failed)?;
    let current = rows(&tx, table, &live_cols).map_err(failed)?;
    let list = live_cols
        .iter()
        .map(|c| quote(c))
        .collect::<Vec<_>>()
        .join(", ");
    let t = quote(table);
    let changes = tx.total_changes();
    let deleted = match mode {
        TableMode::Replace => tx
            .execute(&format!("DELETE FROM main.{t}"), [])
            .map_err(failed)? as u64,
        TableMode::Merge => 0,
    };
    let missing = match mode {
        TableMode::Replace => String::new(),
        TableMode::Merge => {
            let same: Vec<String> = key
                .iter()
                .map(|k| format!("m.{0} IS b.{0}", quote(k)))
                .collect();
            format!(
                "WHERE NOT EXISTS (SELECT 1 FROM main.{t} m WHERE {})",
                same.join(" AND ")
            )
        }
    };
    let inserted = tx
        .execute(
            &format!("INSERT INTO main.{t} ({list}) SELECT {list} FROM {ATTACHED}.{t} b {missing}"),
            [],
        )
        .map_err(failed)? as u64;
    if tx.total_changes() - changes != deleted + inserted {
        return refuse(format!(
            "a trigger on {table} changed other rows; the rest of the database must stay as it is"
        ));
    }
    let after = violations(&tx, table).map_err(failed)?;
    let added: Vec<String> = after
        .iter()
        .filter(|(pair, n)| violations_before.get(*pair).copied().unwrap_or(0) < **n)
        .map(|((child, parent), n)| {
            let was = violations_before
                .get(&(child.clone(), parent.clone()))
                .copied()
                .unwrap_or(0);
            format!("{child} -> {parent}: {was} before, {n} after")
        })
        .collect();
    if !added.is_empty() {
        return refuse(format!(
            "the restored {table} from {} would break foreign keys ({})",
            backup.display(),
            added.join("; ")
        ));
    }
    let archived = current.len() as u64;
    let archive = match current.is_empty() {
        true => None,
        false => {
            let header = ArchiveHeader::new(
                &db.name,
                table,
                live_cols,
                Utc::from_system(now),
                "table_restore",
            );
            Some(
                write_archive(&db.archive_dir, &header, &current)
                    .map_err(|e| RestoreError::Table(e.to_string()))?
                    .path,
            )
        }
    };
    tx.commit().map_err(failed)?;
    tracing::info!(database = %db.name, table, backup = %backup.display(), deleted, inserted, "table restored");
    Ok(TableRestoreReport {
        backup,
        skipped,
        deleted,
        inserted,
        archived,
        archive,
        taken,
    })
}

fn columns(conn: &Connection, schema: &str, table: &str) -> rusqlite::Result<Vec<String>> {
    conn.prepare("SELECT name FROM pragma_table_info(?1, ?2) ORDER BY cid")?
        .query_map([table, schema], |r| r.get(0))?
        .collect()
}

fn has_declared_key(conn: &Connection, table: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM pragma_table_info(?1, 'main') WHERE pk > 0)",
        [table],
        |r| r.get(0),
    )
}

/// Every row of `table`, in the live database.
fn rows(
    conn: &Connection,
    table: &str,
    cols: &[String],
) -> rusqlite::Result<Vec<Vec<ArchiveValue>>> {
    let list: Vec<String> = cols.iter().map(|c| quote(c)).collect();
    let mut stmt = conn.prepare(&format!(
        "SELECT {} FROM main.{}",
        list.join(", "),
        quote(table)
    ))?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let mut v = Vec::with_capacity(cols.len());
        for i in 0..cols.len() {
            v.push(ArchiveValue::from(row.get_ref(i)?));
        }
        out.push(v);
    }
    Ok(out)
}

/// How many foreign keys of `table` and of the tables that refer to it are
/// broken, by (child table, parent table). Counts, not rows: the rows a
/// replace copies in get new rowids, and a backup may hold the same broken
/// keys the database had (orphaned embeddings).
fn violations(conn: &Connection, table: &str) -> rusqlite::Result<BTreeMap<(String, String), u64>> {
    let mut tables: Vec<String> = conn
        .prepare(
            "SELECT DISTINCT m.name FROM main.sqlite_master m, pragma_foreign_key_list(m.name, 'main') f
             WHERE m.type = 'table' AND f.\"table\" = ?1",
        )?
        .query_map([table], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    tables.push(table.to_string());
    tables.sort();
    tables.dedup();
    let mut out = BTreeMap::new();
    for t in tables {
        let mut stmt = conn.prepare(&format!("PRAGMA main.foreign_key_check({})", quote(&t)))?;
        let found = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(2)?)))?;
        for pair in found {
            *out.entry(pair?).or_insert(0) += 1;
        }
    }
    Ok(out)
}
