//! `caretaker serve`: the daemon on its listen address until SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Overrides};

/// Serves `config` on `listen_override`, or on `web.listen_address`.
pub(super) fn serve(
    config: Config,
    listen_override: Option<SocketAddr>,
    overrides: Overrides,
) -> anyhow::Result<ExitCode> {
    super::runtime()?.block_on(async move {
        let address = listen_override.unwrap_or(config.web.listen_address);
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("listening on {address}"))?;
        let shutdown = CancellationToken::new();
        tokio::spawn(stop_on_signal(shutdown.clone()));
        crate::daemon::run_with(config, overrides, listener, shutdown).await?;
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
