//! Schema migrations, run the way seed 001's "Running Migrations Safely"
//! asks, without the hand steps: a fresh verified backup, every pending file
//! tried on a private copy first, and the live database touched only when
//! the whole run passed there.
//!
//! One run, in order:
//! 1. the database's maintenance lock (`<db>.caretaker-lock`, as every
//!    mutating action takes it), so no other caretaker job changes the
//!    database meanwhile;
//! 2. the files to run: the pending `*.sql` files of the folder ([`files`]),
//!    or one `NAME.down.sql` for a rollback;
//! 3. a new backup in the database's [`BackupSet`], verified end to end;
//! 4. a copy of the database beside it ([`apply::Scratch`]), each file
//!    applied to it in one transaction, then `integrity_check` and
//!    `foreign_key_check`;
//! 5. only if every file passed: each file applied to the live database in
//!    one transaction, recorded in `migrations_applied` in that same
//!    transaction.
//!
//! A failure in steps 2 to 4 leaves the live database as it was, byte for
//! byte. In step 5 a file can still fail (the write lock never came within
//! the busy timeout, or the application changed the data since the copy):
//! that file is rolled back, the ones before it stay applied and recorded,
//! and the error says which. A dry run does steps 2 and 4 only.

pub mod apply;
pub mod files;
pub mod job;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::backups::{BackupError, BackupSet};
use crate::config::DatabaseConfig;
use crate::responder::lock::lock_file;
use crate::store::{maintenance::open_maintenance, private, sqlite::open_monitor};
use apply::{Mark, Scratch, Target};
use files::MigrationFile;

/// How long a run waits for another caretaker process's maintenance lock.
const LOCK_WAIT: Duration = Duration::from_secs(5);

/// What a person asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The folder of `*.sql` files.
    pub dir: PathBuf,
    /// Roll back this migration (`NAME` or `NAME.sql`) with `NAME.down.sql`.
    pub rollback: Option<String>,
    /// Say what would run and try it on the copy; change nothing.
    pub dry_run: bool,
    /// How long a file waits for the live database's write lock.
    pub busy_timeout: Duration,
}

/// What a run did (or, dry, would do).
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The files applied (or that would be), in order.
    pub files: Vec<String>,
    /// The backup taken first; none in a dry run or when nothing was pending.
    pub backup: Option<PathBuf>,
    pub mark: Mark,
    pub dry_run: bool,
}

impl Report {
    /// One sentence for the audit and the terminal.
    pub fn summary(&self) -> String {
        let verb = match (self.dry_run, self.mark) {
            (true, Mark::Success) => "would apply",
            (true, Mark::RolledBack) => "would roll back",
            (false, Mark::Success) => "applied",
            (false, Mark::RolledBack) => "rolled back",
        };
        if self.files.is_empty() {
            return "no pending migrations".into();
        }
        let backup = self
            .backup
            .as_ref()
            .map_or_else(String::new, |b| format!("; backup {}", b.display()));
        let checked = if self.dry_run {
            " (checked on a copy)"
        } else {
            ""
        };
        format!("{verb} {}{checked}{backup}", self.files.join(", "))
    }
}

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// Bad input or a missing precondition; nothing was done.
    #[error("{0}")]
    Refused(String),
    #[error("{file}: statement failed: {message}; statement: {statement}")]
    Statement {
        file: String,
        statement: String,
        message: String,
    },
    #[error("{file}: {check} failed after applying it to {target}: {detail}")]
    Check {
        file: String,
        check: &'static str,
        target: apply::Target,
        detail: String,
    },
    #[error("{file}: the write lock was not granted within the busy timeout ({}): another connection holds it; nothing of {file} was applied", humantime::format_duration(*.timeout))]
    Busy { file: String, timeout: Duration },
    #[error("backup before migrating: {0}")]
    Backup(#[from] BackupError),
    #[error("the new backup {} does not verify: {reason}", .path.display())]
    BackupNotVerified { path: PathBuf, reason: String },
    #[error("maintenance lock: {0}")]
    Lock(String),
    /// A live file failed after earlier ones were applied and recorded.
    #[error("{source} (applied and recorded before it: {})", .applied.join(", "))]
    Stopped {
        applied: Vec<String>,
        #[source]
        source: Box<MigrateError>,
    },
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Runs `request` on `db`; see the module's documentation for the steps.
pub fn run(
    db: &DatabaseConfig,
    request: &Request,
    now: SystemTime,
    deadline: Instant,
) -> Result<Report, MigrateError> {
    if !request.dir.is_dir() {
        return Err(MigrateError::Refused(format!(
            "the migrations folder {} does not exist",
            request.dir.display()
        )));
    }
    let backup_set = BackupSet::of(db).ok_or_else(|| {
        MigrateError::Refused(format!(
            "database {} has no backup folder ([database.backup] dir): a migration needs a backup first",
            db.name
        ))
    })?;
    let _lock = if request.dry_run {
        None
    } else {
        Some(lock_file(&db.path, LOCK_WAIT).map_err(|e| MigrateError::Lock(e.to_string()))?)
    };
    let (files, mark) = plan(db, request, deadline)?;
    let mut report = Report {
        files: files.iter().map(|f| f.name.clone()).collect(),
        backup: None,
        mark,
        dry_run: request.dry_run,
    };
    if mark == Mark::RolledBack {
        report.files = files.iter().map(|f| shown(&f.path)).collect();
    }
    if files.is_empty() {
        return Ok(report);
    }
    if !request.dry_run {
        report.backup = Some(fresh_backup(db, &backup_set, now, deadline)?);
    }
    if let Err(e) = Scratch::remove_stale(&db.path) {
        tracing::warn!(database = %db.name, error = %e, "could not remove old test copies");
    }
    let mut scratch = Scratch::copy_of(&db.path, deadline)?;
    for file in &files {
        apply::apply(
            scratch.conn()?,
            Target::Copy,
            file,
            mark,
            now,
            request.busy_timeout,
        )?;
        scratch.check(file)?;
    }
    drop(scratch);
    if request.dry_run {
        return Ok(report);
    }
    let mut live = open_maintenance(&db.path, deadline)?;
    live.busy_timeout(request.busy_timeout)?;
    let mut applied = Vec::new();
    for file in &files {
        match apply::apply(
            &mut live,
            Target::Live,
            file,
            mark,
            now,
            request.busy_timeout,
        ) {
            Ok(()) => applied.push(shown(&file.path)),
            Err(e) if applied.is_empty() => return Err(e),
            Err(e) => {
                return Err(MigrateError::Stopped {
                    applied,
                    source: Box::new(e),
                })
            }
        }
    }
    Ok(report)
}

fn shown(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// The files to run and how to mark them, read under the lock.
fn plan(
    db: &DatabaseConfig,
    request: &Request,
    deadline: Instant,
) -> Result<(Vec<MigrationFile>, Mark), MigrateError> {
    let applied = files::applied(&open_monitor(&db.path, deadline)?)?;
    if let Some(name) = &request.rollback {
        let target = files::rollback_target(&request.dir, name, &applied)?;
        return Ok((vec![target], Mark::RolledBack));
    }
    let names = files::file_names(&request.dir)?;
    let pending = files::pending(&names, &applied)
        .into_iter()
        .map(|name| MigrationFile::read(name.clone(), request.dir.join(&name)))
        .collect::<Result<_, _>>()?;
    Ok((pending, Mark::Success))
}

/// A new backup in `set`, then verified from its file.
fn fresh_backup(
    db: &DatabaseConfig,
    set: &BackupSet,
    now: SystemTime,
    deadline: Instant,
) -> Result<PathBuf, MigrateError> {
    let Some(cfg) = db.backup.as_ref() else {
        return Err(MigrateError::Refused(format!(
            "database {} has no backup folder",
            db.name
        )));
    };
    let deadline = deadline.min(Instant::now() + cfg.timeout);
    private::create_dir_all(&cfg.dir)?;
    let name = set.free_name(now, cfg.compression);
    let written = set.write(db, cfg, &name, deadline, &Default::default())?;
    set.verify(&written.path, cfg.verify, deadline, &Default::default())
        .map_err(|reason| MigrateError::BackupNotVerified {
            path: written.path.clone(),
            reason,
        })?;
    Ok(written.path)
}
