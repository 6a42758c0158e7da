//! The `caretaker` binary: parse arguments, set up logging, call the library.

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use caretaker::cli::{Cli, LogFormat};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_new(&cli.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Logfmt => builder.with_ansi(false).init(),
    }
    match caretaker::app::main(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("caretaker: {e:#}");
            ExitCode::FAILURE
        }
    }
}
