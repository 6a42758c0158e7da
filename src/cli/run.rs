//! `caretaker run ACTION`: one action now, through the responder's locks,
//! breaker and audit ([`crate::responder::manual`]); the job's record is
//! printed as JSON.

use std::process::ExitCode;

use crate::config::Config;
use crate::responder::job::JobStatus;
use crate::responder::manual::{self, ManualRun, Overrides};

/// Exit 0 on success, 1 on failure, 2 when a safety check skipped the job,
/// 130 when Ctrl-C left it unfinished.
pub(super) fn run(
    config: &Config,
    action: &str,
    database: Option<&str>,
    dry_run: bool,
    ignore_window: bool,
) -> anyhow::Result<ExitCode> {
    let runtime = super::runtime()?;
    let overrides = Overrides {
        dry_run,
        ignore_window,
    };
    let interrupt = async {
        // An error setting up the handler counts as an interruption, as before.
        let _ = tokio::signal::ctrl_c().await;
    };
    let outcome = runtime.block_on(manual::run(
        config,
        action,
        database,
        overrides,
        super::progress::reporter(),
        interrupt,
    ))?;
    match outcome {
        ManualRun::Finished(done) => {
            println!("{}", serde_json::to_string_pretty(&done)?);
            Ok(match done.status {
                JobStatus::Succeeded => ExitCode::SUCCESS,
                JobStatus::Skipped => ExitCode::from(2),
                _ => ExitCode::FAILURE,
            })
        }
        ManualRun::Interrupted(id) => {
            eprintln!("interrupted; job {id} is marked interrupted at the next start");
            // The job's blocking work may still run: leave without waiting for it.
            runtime.shutdown_background();
            Ok(ExitCode::from(130))
        }
    }
}
