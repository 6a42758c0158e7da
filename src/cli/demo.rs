//! `caretaker demo`: a demo database, backup folder and configuration, then
//! `serve` on them (the files are made by [`crate::demo`]).

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use crate::config::{Config, Overrides};
use crate::demo::{first_backup, prepare, sample_alert_command, DemoOptions};

pub(super) fn demo(
    dir: &Path,
    listen_address: Option<SocketAddr>,
    overrides: Overrides,
    patterns: u64,
    pattern_bytes: usize,
    no_serve: bool,
) -> anyhow::Result<ExitCode> {
    let options = DemoOptions {
        patterns,
        pattern_bytes,
        listen_address,
    };
    let config_file = prepare(dir, &options)?;
    let config = Config::load(&config_file)?;
    first_backup(&config)?;
    if no_serve {
        return Ok(ExitCode::SUCCESS);
    }
    let listen = listen_address.unwrap_or(config.web.listen_address);
    println!(
        "caretaker demo in {}: open http://{listen}/ (metrics at /metrics)",
        dir.display()
    );
    println!(
        "Fire a sample alert and watch it become a purge_expired job (curl .../api/v1/actions):"
    );
    println!("{}", sample_alert_command(dir, &listen.to_string()));
    super::serve::serve(config, listen_address, overrides)
}
