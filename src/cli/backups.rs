//! `caretaker backups list|verify|snapshot`: a database's backups, one line
//! each, and one incremental snapshot by hand.

use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;

use super::BackupsCommand;
use crate::backups::chain::take::{take_snapshot, Taken};
use crate::backups::chain::Chain;
use crate::backups::listing::ChecksumCache;
use crate::backups::restore::list_backups;
use crate::backups::verify::verify_backup;
use crate::backups::DatabaseBackup;
use crate::config::{Config, DatabaseConfig};
use crate::responder::lock::lock_file;

/// Lists or verifies every backup; exit 1 when one fails verification.
pub(super) fn backups(
    config: &Config,
    command: BackupsCommand,
    database: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let db = super::pick_database(config, database)?;
    if command == BackupsCommand::Snapshot {
        return snapshot(db);
    }
    let backups = list_backups(db)?;
    let mut failed = 0;
    let progress = super::progress::reporter();
    for b in &backups {
        let taken = humantime::format_rfc3339_seconds(b.taken);
        match command {
            BackupsCommand::List => {
                let state = if b.verified {
                    "checksum ok"
                } else {
                    "checksum missing or wrong"
                };
                println!("{taken}  {:>12}  {state}  {}", b.size, b.path.display());
                print_chain(b)?;
            }
            BackupsCommand::Snapshot => {}
            BackupsCommand::Verify => {
                let deadline = Instant::now() + Duration::from_secs(3600);
                match verify_backup(&b.path, db.integrity_check, deadline, &progress) {
                    Ok(()) => println!("ok      {taken}  {}", b.path.display()),
                    Err(e) => {
                        failed += 1;
                        println!("FAILED  {taken}  {}: {e}", b.path.display());
                    }
                }
            }
        }
    }
    if backups.is_empty() {
        println!("no backups of {}", db.name);
    }
    Ok(if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The chain of incremental snapshots on a full backup, if one was started:
/// its links and the moments `restore --at` can rebuild from it.
fn print_chain(base: &DatabaseBackup) -> anyhow::Result<()> {
    let chain = Chain::read(base.clone())?;
    if !chain.started() {
        return Ok(());
    }
    let stamp = humantime::format_rfc3339_seconds;
    println!(
        "    chain: {} deltas, {} bytes, restorable from {} to {}  {}",
        chain.links.len(),
        chain.bytes(),
        stamp(chain.base.taken),
        stamp(chain.newest_point()),
        chain.dir.display()
    );
    if let Some(why) = &chain.broken {
        println!("    chain broken after its last delta: {why}");
    }
    Ok(())
}

/// One snapshot now, under the database's maintenance lock (a running
/// daemon's loop or backup makes this wait, then refuse).
fn snapshot(db: &DatabaseConfig) -> anyhow::Result<ExitCode> {
    let cfg = db
        .backup
        .as_ref()
        .with_context(|| format!("database {} has no backup folder configured", db.name))?;
    let _lock = lock_file(&db.path, Duration::from_secs(5))?;
    let deadline = Instant::now() + cfg.timeout;
    let taken = take_snapshot(
        db,
        cfg,
        SystemTime::now(),
        deadline,
        &mut ChecksumCache::default(),
    )?;
    match taken {
        Taken::Delta {
            sequence,
            changed_pages,
            bytes,
        } => {
            println!("delta {sequence}: {changed_pages} pages changed, {bytes} bytes");
            match crate::backups::offsite::links::upload_after_snapshot(&db.name, cfg, deadline) {
                Some(Ok(up)) => {
                    println!("uploaded {} links offsite ({} bytes)", up.links, up.bytes)
                }
                Some(Err(e)) => {
                    println!("offsite upload failed (retried after the next snapshot): {e}")
                }
                None => {}
            }
        }
        Taken::Unchanged => println!("unchanged since the last snapshot"),
        Taken::NeedsFullBackup(why) => {
            println!("no chain to extend ({why}): take a full backup first (caretaker run backup)");
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}
