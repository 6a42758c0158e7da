//! The manifest beside every backup (local and remote): what the backup
//! holds, so a restore or a drill can tell a good copy from a wrong one
//! without trusting the file that is being checked.

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use rusqlite::{Connection, OpenFlags};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::backups::sidecar::sha256_file;
use crate::backups::temporaries::{hidden_sibling, run_tag, TempFile};
use crate::backups::verify::decompress;
use crate::store::sqlite::existing_tables;

/// What the manifest file of a backup named `NAME` is called: `NAME.manifest.json`.
pub const MANIFEST_SUFFIX: &str = ".manifest.json";

/// The manifest of one backup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub database: String,
    /// The backup's file name.
    pub backup: String,
    /// RFC 3339, UTC.
    pub taken_at: String,
    /// SHA-256 of the uncompressed SQLite file.
    pub sqlite_sha256: String,
    pub page_size: u64,
    pub page_count: u64,
    /// SHA-256 over `sqlite_schema` (type, name, table, sql), ordered by name.
    pub schema_hash: String,
    /// `migrations_applied.filename` of successful migrations, in order.
    pub migrations_applied: Vec<String>,
    pub row_counts: std::collections::BTreeMap<String, u64>,
}

/// The manifest file of `backup`.
pub fn manifest_of(backup: &Path) -> PathBuf {
    let mut name = backup.as_os_str().to_os_string();
    name.push(MANIFEST_SUFFIX);
    PathBuf::from(name)
}

/// Decompresses `backup` to a hidden temporary beside it (always removed)
/// and describes the SQLite file it holds.
pub fn describe_backup(
    backup: &Path,
    database: &str,
    taken: SystemTime,
    deadline: Instant,
) -> Result<Manifest, String> {
    let temp = TempFile(hidden_sibling(
        backup,
        &format!("manifest.{}.tmp", run_tag()),
    ));
    decompress(backup, &temp.0, deadline).map_err(|e| format!("cannot decompress: {e}"))?;
    let name = backup
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    describe_file(&temp.0, database, name, taken).map_err(|e| format!("cannot describe: {e}"))
}

/// Describes the SQLite file at `path`.
pub fn describe_file(
    path: &Path,
    database: &str,
    backup: &str,
    taken: SystemTime,
) -> Result<Manifest, Box<dyn std::error::Error + Send + Sync>> {
    let sqlite_sha256 = sha256_file(path)?;
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    let page_count: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let mut hasher = Sha256::new();
    let mut stmt = conn.prepare(
        "SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_schema ORDER BY name",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok([r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get(3)?])
    })?;
    for row in rows {
        for field in row? {
            hasher.update(field.as_bytes());
            hasher.update([0u8]);
        }
    }
    let schema_hash = format!("{:x}", hasher.finalize());
    let tables = existing_tables(&conn)?;
    let mut row_counts = std::collections::BTreeMap::new();
    for table in &tables {
        let quoted = table.replace('"', "\"\"");
        let n: i64 = conn.query_row(&format!("SELECT count(*) FROM \"{quoted}\""), [], |r| {
            r.get(0)
        })?;
        row_counts.insert(table.clone(), u64::try_from(n).unwrap_or(0));
    }
    let migrations_applied = if tables.iter().any(|t| t == "migrations_applied") {
        let mut stmt = conn.prepare(
            "SELECT filename FROM migrations_applied WHERE status = 'success' ORDER BY id",
        )?;
        let names = stmt.query_map([], |r| r.get::<_, String>(0))?;
        names.collect::<Result<Vec<_>, _>>()?
    } else {
        Vec::new()
    };
    Ok(Manifest {
        database: database.to_string(),
        backup: backup.to_string(),
        taken_at: chrono::DateTime::<chrono::Utc>::from(taken)
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        sqlite_sha256,
        page_size: u64::try_from(page_size).unwrap_or(0),
        page_count: u64::try_from(page_count).unwrap_or(0),
        schema_hash,
        migrations_applied,
        row_counts,
    })
}

/// Writes `manifest` beside `backup` (temporary name, fsync, rename).
pub fn write_local(backup: &Path, manifest: &Manifest) -> std::io::Result<PathBuf> {
    use std::io::Write;
    let path = manifest_of(backup);
    let body = serde_json::to_vec_pretty(manifest).map_err(std::io::Error::other)?;
    let temp = TempFile(hidden_sibling(&path, &format!("{}.tmp", run_tag())));
    let mut f = crate::store::private::create_new(&temp.0)?;
    f.write_all(&body)?;
    f.sync_all()?;
    std::fs::rename(&temp.0, &path)?;
    temp.keep();
    Ok(path)
}
