//! `caretaker backups list|verify --from=offsite` and `caretaker restore
//! --from=offsite`: the backups in `[database.backup.offsite]`. Each is
//! downloaded into the backup folder (created when missing: a new host needs
//! only the configuration), decrypted and checked against its sidecar before
//! anything else; a restore then puts it in the folder as a local backup and
//! runs the local restore on it (checks, `.before-restore` copy, rollback).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::BackupsCommand;
use crate::backups::offsite::{Offsite, RemoteBackup};
use crate::backups::restore::{restore_with, RestoreChoice, RestoreReport};
use crate::backups::temporaries::{hidden_sibling, run_tag, TempFile};
use crate::backups::verify::{check_database_file, decompress_into};
use crate::config::{BackupConfig, Config, DatabaseConfig};
use crate::progress::Reporter;

fn offsite_of(db: &DatabaseConfig) -> anyhow::Result<(&BackupConfig, Offsite)> {
    let Some((backup, cfg)) = db
        .backup
        .as_ref()
        .and_then(|b| b.offsite.as_ref().map(|o| (b, o)))
    else {
        bail!("database {} has no [database.backup.offsite]", db.name);
    };
    Ok((backup, Offsite::open(cfg, &db.name)?))
}

/// Lists or verifies every remote backup; exit 1 when one fails.
pub(super) fn backups(
    config: &Config,
    command: BackupsCommand,
    database: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let db = super::pick_database(config, database)?;
    let (backup, offsite) = offsite_of(db)?;
    let remote = offsite.list().context("listing the offsite store")?;
    let mut failed = 0;
    let progress = super::progress::reporter();
    for r in &remote {
        let taken = humantime::format_rfc3339_seconds(r.taken);
        match command {
            BackupsCommand::List => println!("{taken}  {:>12}  offsite  {}", r.size, r.name),
            BackupsCommand::Snapshot => {
                anyhow::bail!("snapshots are taken locally; drop --from=offsite")
            }
            BackupsCommand::Verify => match verify(&offsite, r, backup, db, &progress) {
                Ok(()) => println!("ok      {taken}  {}", r.name),
                Err(e) => {
                    failed += 1;
                    println!("FAILED  {taken}  {}: {e}", r.name);
                }
            },
        }
    }
    if remote.is_empty() {
        println!("no offsite backups of {}", db.name);
    }
    Ok(if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Download, decrypt, checksum, decompress and check one remote backup;
/// every file it made is removed.
fn verify(
    offsite: &Offsite,
    remote: &RemoteBackup,
    backup: &BackupConfig,
    db: &DatabaseConfig,
    progress: &Reporter,
) -> Result<(), String> {
    let fetched = offsite
        .fetch(&remote.name, &backup.dir, progress)
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(3600);
    let plain = TempFile(hidden_sibling(
        fetched.path(),
        &format!("verify.{}.tmp", run_tag()),
    ));
    let decompressed = crate::store::private::create_new(&plain.0)
        .and_then(|mut out| decompress_into(fetched.path(), &mut out, deadline, progress));
    decompressed.map_err(|e| format!("cannot decompress: {e}"))?;
    let _shown = progress.stage(&format!("checking {}", remote.name), None);
    check_database_file(&plain.0, db.integrity_check, deadline)
}

/// Restores from the newest remote backup that checks out (or the chosen
/// one), falling back to older ones when a newer one does not; recorded as
/// a job like a local restore.
pub(super) fn restore(
    config: &Config,
    database: Option<&str>,
    backup: Option<PathBuf>,
    moment: super::restore::Moment<'_>,
    force: bool,
) -> anyhow::Result<ExitCode> {
    let db = crate::responder::direct::database(config, database)?;
    if let Some(at) = moment.at {
        if backup.is_some() {
            bail!("--at picks the chain itself; drop --backup");
        }
        let t = super::restore::parse_time("--at", at)?;
        let asked = format!("the state the offsite chains rebuild at {at}");
        return super::restore::recorded_restore(config, db, asked, |_| {
            at_from_offsite(db, t, force).map_err(|e| format!("{e:#}"))
        });
    }
    let before = moment.before;
    let asked = match (&backup, before) {
        (Some(b), _) => format!("offsite backup {}", b.display()),
        (None, Some(t)) => format!("the newest offsite backup before {t}"),
        (None, None) => "the newest offsite backup that checks out".to_string(),
    };
    super::restore::recorded_restore(config, db, asked, |_| {
        from_offsite(db, backup, before, force).map_err(|e| format!("{e:#}"))
    })
}

fn from_offsite(
    db: &DatabaseConfig,
    backup: Option<PathBuf>,
    before: Option<&str>,
    force: bool,
) -> anyhow::Result<RestoreReport> {
    let (local, offsite) = offsite_of(db)?;
    let remote = offsite.list().context("listing the offsite store")?;
    let before = before
        .map(|t| {
            chrono::DateTime::parse_from_rfc3339(t)
                .map(std::time::SystemTime::from)
                .with_context(|| format!("--before {t:?} is not an RFC 3339 time"))
        })
        .transpose()?;
    let wanted = backup.map(|b| {
        b.file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    });
    let candidates: Vec<&RemoteBackup> = remote
        .iter()
        .filter(|r| wanted.as_ref().is_none_or(|w| &r.name == w))
        .filter(|r| before.is_none_or(|t| r.taken < t))
        .collect();
    if candidates.is_empty() {
        bail!("no offsite backup of {} matches", db.name);
    }
    let seams = super::restore::showing_progress();
    for r in candidates {
        let placed = offsite
            .fetch(&r.name, &local.dir, &seams.progress)
            .and_then(|f| f.publish(&local.dir));
        match placed {
            Ok(path) => {
                println!("downloaded {} into {}", r.name, path.display());
                return Ok(restore_with(db, RestoreChoice::File(path), force, &seams)?);
            }
            Err(e) => println!("skipped {}: {e}", r.name),
        }
    }
    bail!(
        "no offsite backup of {} could be downloaded and checked",
        db.name
    )
}

/// `--from=offsite --at`: the newest remote full backup taken at or before
/// `at` and its links up to `at` are downloaded into the backup folder (a
/// local chain like any other, kept afterwards), then the local `--at`
/// restore rebuilds and checks the state. A remote base or link that fails
/// its check refuses the restore, naming it: an older state than asked for
/// is never given without saying so.
fn at_from_offsite(
    db: &DatabaseConfig,
    at: std::time::SystemTime,
    force: bool,
) -> anyhow::Result<RestoreReport> {
    let (local, offsite) = offsite_of(db)?;
    let remote = offsite.list().context("listing the offsite store")?;
    let Some(base) = remote.iter().find(|r| r.taken <= at) else {
        bail!(
            "no offsite backup of {} was taken at or before {}",
            db.name,
            humantime::format_rfc3339_millis(at)
        );
    };
    let seams = super::restore::showing_progress();
    let path = offsite
        .fetch(&base.name, &local.dir, &seams.progress)
        .and_then(|f| f.publish(&local.dir))
        .with_context(|| format!("offsite backup {}", base.name))?;
    let chain_dir = crate::backups::chain::chain_dir_of(&path);
    let links = offsite
        .fetch_links(&base.name, at, &chain_dir)
        .with_context(|| format!("the offsite links of {}", base.name))?;
    println!(
        "downloaded {} and {links} of its links into {}",
        base.name,
        local.dir.display()
    );
    Ok(restore_with(db, RestoreChoice::At(at), force, &seams)?)
}
