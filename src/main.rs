//! The `caretaker` binary: parse arguments, set up logging, call the library.

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use caretaker::cli::{Cli, LogFormat};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_new(&cli.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    match cli.log_format {
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init(),
        LogFormat::Logfmt => tracing_logfmt::builder()
            .subscriber_builder()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init(),
    }
    match caretaker::cli::main(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("caretaker: {e:#}");
            ExitCode::FAILURE
        }
    }
}
