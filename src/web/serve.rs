//! caretaker's HTTP server loop: axum's router on hyper's HTTP/1 connections,
//! with the two bounds `axum::serve` (0.8) does not offer.
//!
//! - A connection limit (`web.max_connections`): a connection is accepted
//!   only when a permit is free, so beyond the limit clients wait in the
//!   kernel's backlog instead of each costing a task and buffers.
//! - A header read timeout (`web.header_read_timeout`): a client that has
//!   not sent a request's headers in time, including an idle keep-alive
//!   connection between requests, is disconnected, so half-sent requests
//!   cannot hold permits forever.
//!
//! - TLS when the web config file in force sets a certificate: each new
//!   connection takes the rustls configuration current when it is accepted
//!   (a reload changes it for new connections only), and its handshake must
//!   end within the header read timeout too. A client that speaks plain HTTP
//!   to the TLS port gets a plain 400 saying so, not a silent hang-up.
//!
//! On shutdown it stops accepting, asks every connection to finish its
//! current request, and waits for them.

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::WebConfig;

/// How long to wait after a failed accept (e.g. out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(250);

/// The bounds of the server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
}

impl From<&WebConfig> for Limits {
    fn from(web: &WebConfig) -> Self {
        Self {
            max_connections: web.max_connections,
            header_read_timeout: web.header_read_timeout,
        }
    }
}

/// What a plain-HTTP request to the TLS port is answered.
const PLAIN_TO_TLS: &[u8] = b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nThis caretaker speaks HTTPS: use https:// (see docs/security.md).\n";

/// Serves `router` on `listener` until `shutdown` fires, then drains. Each
/// accepted connection asks `tls` whether (and how) to speak TLS.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    tls: impl Fn() -> Option<Arc<ServerConfig>>,
    shutdown: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let connections = TaskTracker::new();
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    tracing::error!(error = %e, "cannot accept connections");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let shutdown = shutdown.clone();
        let tls = tls();
        connections.spawn(async move {
            let _permit = permit;
            match tls {
                None => serve_connection(stream, service, limits, shutdown).await,
                Some(config) => {
                    let handshake = tokio::select! {
                        _ = shutdown.cancelled() => return,
                        done = tokio::time::timeout(
                            limits.header_read_timeout,
                            handshake(stream, config),
                        ) => done,
                    };
                    match handshake {
                        Ok(Some(stream)) => {
                            serve_connection(stream, service, limits, shutdown).await
                        }
                        Ok(None) => {}
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                }
            }
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

/// The TLS handshake; `None` when it failed (a plain-HTTP client is told why).
async fn handshake(
    mut stream: TcpStream,
    config: Arc<ServerConfig>,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    // A TLS ClientHello starts with the handshake record type 0x16; an HTTP
    // request starts with a method's capital letter.
    let mut first = [0u8; 1];
    if matches!(stream.peek(&mut first).await, Ok(1) if first[0].is_ascii_uppercase()) {
        let _ = stream.write_all(PLAIN_TO_TLS).await;
        let _ = stream.shutdown().await;
        tracing::debug!("plain HTTP request on the TLS port refused");
        return None;
    }
    match tokio_rustls::TlsAcceptor::from(config).accept(stream).await {
        Ok(stream) => Some(stream),
        Err(e) => {
            tracing::debug!(error = %e, "TLS handshake failed");
            None
        }
    }
}

/// Serves HTTP/1 on one connection until it ends or shutdown finishes it.
async fn serve_connection<I>(
    io: I,
    service: TowerToHyperService<Router>,
    limits: Limits,
    shutdown: CancellationToken,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let mut conn = pin!(builder.serve_connection(TokioIo::new(io), service));
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended");
            }
        }
        _ = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        e.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    )
}
