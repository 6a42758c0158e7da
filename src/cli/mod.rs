//! The command line: the clap types ([`args`]) and one function per
//! subcommand, called from the one `match` in [`main`].
//!
//! This is the only module that prints to the terminal or chooses an exit
//! code: the library below returns values and typed errors, and each
//! subcommand here turns them into lines and a status. The configuration is
//! read once per command, by [`load`] in the dispatch (`check-config` reads it
//! to report its errors, `demo` reads the file it has just written).

mod args;
mod backups;
mod check_config;
mod collect;
mod demo;
mod generate_docs;
mod history;
mod migrate;
mod offsite;
mod progress;
mod report;
mod restore;
mod restore_archive;
mod run;
mod serve;
mod status;

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

pub use args::{BackupSource, BackupsCommand, Cli, Command, LogFormat};

use crate::config::{Config, DatabaseConfig, Overrides};
use restore::Moment;

/// The flags that replace parts of the file; paths made absolute here, so
/// they name the same file at every reload.
fn overrides(web_config_file: Option<std::path::PathBuf>) -> anyhow::Result<Overrides> {
    let web_config_file = web_config_file
        .map(|p| std::path::absolute(&p).with_context(|| format!("resolving {}", p.display())))
        .transpose()?;
    Ok(Overrides { web_config_file })
}

/// Runs one subcommand to completion.
pub fn main(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::CheckConfig {
            config_file,
            web_config_file,
        } => Ok(check_config::check_config(
            &config_file,
            &overrides(web_config_file)?,
        )),
        Command::GenerateDocs(args) => generate_docs::run(&args),
        Command::Status(args) => status::run(&args),
        Command::Demo {
            dir,
            listen_address,
            web_config_file,
            patterns,
            pattern_bytes,
            no_serve,
        } => demo::demo(
            &dir,
            listen_address,
            overrides(web_config_file)?,
            patterns,
            pattern_bytes,
            no_serve,
        ),
        Command::Serve {
            config_file,
            listen_address,
            web_config_file,
        } => serve::serve(
            load(&config_file)?,
            listen_address,
            overrides(web_config_file)?,
        ),
        Command::Run {
            action,
            config_file,
            database,
            dry_run,
            ignore_window,
        } => run::run(
            &load(&config_file)?,
            &action,
            database.as_deref(),
            dry_run,
            ignore_window,
        ),
        Command::History {
            config_file,
            limit,
            action,
            database,
        } => history::history(&load(&config_file)?, limit, action, database),
        Command::Backups {
            command,
            config_file,
            database,
            from,
        } => {
            let run = match from {
                BackupSource::Local => backups::backups,
                BackupSource::Offsite => offsite::backups,
            };
            run(&load(&config_file)?, command, database.as_deref())
        }
        Command::Restore {
            config_file,
            database,
            backup,
            before,
            at,
            force: _,
            from,
            table: Some(table),
            mode,
        } => {
            if from == BackupSource::Offsite {
                anyhow::bail!("--table restores from the backup folder; it cannot be combined with --from=offsite");
            }
            restore::restore_table(
                &load(&config_file)?,
                database.as_deref(),
                backup,
                Moment {
                    before: before.as_deref(),
                    at: at.as_deref(),
                },
                &table,
                mode.unwrap_or_default(),
            )
        }
        Command::Restore {
            config_file,
            database,
            backup,
            before,
            at,
            force,
            from,
            table: None,
            mode: _,
        } => {
            let run = match from {
                BackupSource::Local => restore::restore,
                BackupSource::Offsite => offsite::restore,
            };
            run(
                &load(&config_file)?,
                database.as_deref(),
                backup,
                Moment {
                    before: before.as_deref(),
                    at: at.as_deref(),
                },
                force,
            )
        }
        Command::RestoreArchive {
            config_file,
            database,
            files,
        } => restore_archive::restore_archive(&load(&config_file)?, database.as_deref(), &files),
        Command::Migrate {
            config_file,
            database,
            dir,
            rollback,
            dry_run,
            busy_timeout,
        } => migrate::migrate(
            &load(&config_file)?,
            database.as_deref(),
            crate::migrate::Request {
                dir,
                rollback,
                dry_run,
                busy_timeout,
            },
        ),
        Command::Collect {
            config_file,
            once: _,
            collectors,
        } => collect::collect(&load(&config_file)?, collectors),
        Command::Report {
            config_file,
            database,
            period,
            format,
            output,
        } => report::report(
            &load(&config_file)?,
            database.as_deref(),
            period,
            format,
            output.as_deref(),
        ),
    }
}

/// Reads and validates the configuration file of a command.
fn load(path: &Path) -> anyhow::Result<Config> {
    Ok(Config::load(path)?)
}

/// The named database, or the only one.
fn pick_database<'a>(config: &'a Config, name: Option<&str>) -> anyhow::Result<&'a DatabaseConfig> {
    Ok(crate::responder::direct::database(config, name)?)
}

/// A multi-threaded runtime for the subcommands that run async code.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}
