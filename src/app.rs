//! What each subcommand does, between the parsed arguments and the library.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::cli::Command;
use crate::config::Config;
use crate::demo;

/// Runs one subcommand to completion.
pub fn main(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::CheckConfig { config_file } => Ok(check_config(&config_file)),
        Command::GenerateDocs(args) => crate::docs_gen::run(&args),
        Command::Status(args) => crate::status::run(&args),
        Command::Collect {
            config_file,
            once: _,
            collectors,
        } => {
            let config = Config::load(&config_file)?;
            let all = collectors.iter().any(|c| c == "all");
            let names = if all { Vec::new() } else { collectors };
            let report = crate::collect_once::collect_once(&config, &names);
            println!("{report}");
            let failed = report["collectors"]
                .as_array()
                .is_some_and(|c| c.iter().any(|e| e["ok"] == false));
            Ok(if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Run {
            action,
            config_file,
            database,
            dry_run,
            ignore_window,
        } => {
            let config = Config::load(&config_file)?;
            block_on(crate::responder::manual::run(
                &config,
                &action,
                database.as_deref(),
                crate::responder::manual::Overrides {
                    dry_run,
                    ignore_window,
                },
            ))
        }
        Command::Restore {
            config_file,
            database,
            backup,
            before,
            force,
        } => {
            let config = Config::load(&config_file)?;
            crate::maintenance_cli::restore_command(
                &config,
                database.as_deref(),
                backup,
                before.as_deref(),
                force,
            )
        }
        Command::Backups {
            command,
            config_file,
            database,
        } => {
            let config = Config::load(&config_file)?;
            crate::maintenance_cli::backups_command(&config, command, database.as_deref())
        }
        Command::RestoreArchive {
            config_file,
            database,
            file,
        } => {
            let config = Config::load(&config_file)?;
            crate::maintenance_cli::restore_archive_command(&config, database.as_deref(), &file)
        }
        Command::History {
            config_file,
            limit,
            action,
            database,
        } => {
            let config = Config::load(&config_file)?;
            crate::responder::manual::history(&config, limit, action, database)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve {
            config_file,
            listen_address,
        } => {
            let config = Config::load(&config_file)?;
            serve(config, listen_address)
        }
        Command::Demo {
            dir,
            listen_address,
            patterns,
            pattern_bytes,
            no_serve,
        } => {
            let options = demo::DemoOptions {
                patterns,
                pattern_bytes,
                listen_address,
            };
            let config_file = demo::prepare(&dir, &options)?;
            let config = Config::load(&config_file)?;
            demo::first_backup(&config)?;
            if no_serve {
                return Ok(ExitCode::SUCCESS);
            }
            let listen = listen_address.unwrap_or(config.web.listen_address);
            println!(
                "caretaker demo in {}: open http://{listen}/ (metrics at /metrics)",
                dir.display()
            );
            println!("Fire a sample alert and watch it become a purge_expired job (curl .../api/v1/actions):");
            println!("{}", demo::sample_alert_command(&dir, &listen.to_string()));
            serve(config, listen_address)
        }
    }
}

fn check_config(path: &Path) -> ExitCode {
    match Config::load(path) {
        Ok(config) => {
            // The daemon refuses tokens it cannot use, so check-config does too.
            let (credentials, problems) = crate::web::auth::Credentials::load(&config.web);
            if !problems.is_empty() {
                for problem in &problems {
                    eprintln!("{}: {problem}", path.display());
                }
                return ExitCode::FAILURE;
            }
            if credentials.shared() {
                eprintln!(
                    "{}: warning: {}",
                    path.display(),
                    crate::web::auth::SHARED_CREDENTIAL_WARNING
                );
            }
            println!(
                "{}: valid, {} database(s)",
                path.display(),
                config.databases.len()
            );
            let shared = crate::collector::backup_owner::shared_folders(&config);
            for (dir, names) in shared {
                eprintln!(
                    "{}: warning: databases {} share the backup folder {}: each counts, verifies and prunes only the files named after it",
                    path.display(),
                    names.join(", "),
                    dir.display()
                );
            }
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("{e}");
            }
            ExitCode::FAILURE
        }
    }
}

fn block_on<T>(f: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(f)
}

fn serve(config: Config, listen_override: Option<SocketAddr>) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let address = listen_override.unwrap_or(config.web.listen_address);
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("listening on {address}"))?;
        let shutdown = CancellationToken::new();
        tokio::spawn(stop_on_signal(shutdown.clone()));
        crate::daemon::run(config, listener, shutdown).await?;
        Ok(ExitCode::SUCCESS)
    })
}

async fn stop_on_signal(shutdown: CancellationToken) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down");
    shutdown.cancel();
}
