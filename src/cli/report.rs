//! `caretaker report`: gathers each database's report and prints it or
//! writes it to `--output` (a temporary name, synced, then renamed, so a
//! half-written report never looks complete).

use std::path::Path;
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::Context;

use crate::config::Config;
use crate::report::render::{self, Format};
use crate::report::{gather, Period};

pub(super) fn report(
    config: &Config,
    database: Option<&str>,
    period: Period,
    format: Format,
    output: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let databases: Vec<_> = match database {
        Some(name) => vec![super::pick_database(config, Some(name))?],
        None => config.databases.iter().collect(),
    };
    let now = SystemTime::now();
    let reports = databases
        .into_iter()
        .map(|db| gather(config, db, period, now))
        .collect::<Result<Vec<_>, _>>()?;
    let text = match format {
        Format::Html => render::html(&reports),
        Format::Markdown => reports
            .iter()
            .map(render::markdown)
            .collect::<Vec<_>>()
            .join("\n"),
    };
    match output {
        None => print!("{text}"),
        Some(path) => crate::report::write_file(path, text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?,
    }
    Ok(ExitCode::SUCCESS)
}
