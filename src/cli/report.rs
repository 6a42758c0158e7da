//! `caretaker report`: gathers each database's report and prints it or
//! writes it to `--output` (a temporary name, synced, then renamed, so a
//! half-written report never looks complete).

use std::io::Write;
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
        Some(path) => write_replacing(path, text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `bytes` to `path` through a temporary file beside it.
pub(crate) fn write_replacing(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map_or_else(|| "report".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
