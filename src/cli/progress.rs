//! What long commands show while they work (`caretaker run`, `backups
//! verify`, `restore`): the library reports stages and bytes to a
//! [`Reporter`]; here they become a bar with bytes, rate and time left when
//! standard error is a terminal, and plain log lines otherwise (a cron job's
//! mail, a journal, a pipe), so no escape code reaches a file.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::progress::{Reporter, Sink};

/// At most one log line per stage this often (besides its first and last).
const LOG_EVERY: Duration = Duration::from_secs(5);
/// How often a bar is redrawn while nothing moves (rate, time, spinner).
const TICK: Duration = Duration::from_millis(100);

/// The reporter for this process's standard error.
pub(super) fn reporter() -> Reporter {
    if std::io::stderr().is_terminal() {
        Reporter::new(Arc::new(Bar::default()))
    } else {
        Reporter::new(Arc::new(Lines::default()))
    }
}

/// A bar on the terminal: bytes, rate and time left when the total is
/// known, a spinner with the time so far when it is not.
#[derive(Default)]
struct Bar(Mutex<Option<ProgressBar>>);

impl Sink for Bar {
    fn begin(&self, what: &str, total: Option<u64>) {
        let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
        let template = match total {
            Some(_) => "[{bar:24}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec}, {eta} left  {wide_msg}",
            None => "{spinner} {elapsed} {wide_msg}",
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(what.to_string());
        bar.enable_steady_tick(TICK);
        if let Some(old) = lock(&self.0).replace(bar) {
            old.finish();
        }
    }

    fn set(&self, done: u64) {
        if let Some(bar) = lock(&self.0).as_ref() {
            bar.set_position(done);
        }
    }

    fn end(&self) {
        if let Some(bar) = lock(&self.0).take() {
            bar.finish();
        }
    }
}

/// Log lines: one when a stage begins, at most one every [`LOG_EVERY`]
/// while it runs, one when it ends.
#[derive(Default)]
struct Lines(Mutex<Option<Logged>>);

struct Logged {
    what: String,
    total: Option<u64>,
    started: Instant,
    last_line: Instant,
    done: u64,
}

impl Logged {
    fn rate(&self) -> f64 {
        self.done as f64 / self.started.elapsed().as_secs_f64().max(1e-3)
    }
}

impl Sink for Lines {
    fn begin(&self, what: &str, total: Option<u64>) {
        tracing::info!(stage = what, total_bytes = total, "started");
        let now = Instant::now();
        *lock(&self.0) = Some(Logged {
            what: what.to_string(),
            total,
            started: now,
            last_line: now,
            done: 0,
        });
    }

    fn set(&self, done: u64) {
        let mut guard = lock(&self.0);
        let Some(stage) = guard.as_mut() else { return };
        stage.done = done;
        if stage.last_line.elapsed() < LOG_EVERY {
            return;
        }
        stage.last_line = Instant::now();
        let rate = stage.rate();
        let left = stage
            .total
            .map(|t| t.saturating_sub(done) as f64 / rate.max(1.0));
        tracing::info!(
            stage = %stage.what,
            done_bytes = done,
            total_bytes = stage.total,
            bytes_per_second = rate.round(),
            seconds_left = left.map(f64::round),
            "progress"
        );
    }

    fn end(&self) {
        let Some(stage) = lock(&self.0).take() else {
            return;
        };
        let seconds = (stage.started.elapsed().as_secs_f64() * 10.0).round() / 10.0;
        if stage.total.is_some() {
            tracing::info!(
                stage = %stage.what,
                done_bytes = stage.done,
                seconds,
                bytes_per_second = stage.rate().round(),
                "done"
            );
        } else {
            tracing::info!(stage = %stage.what, seconds, "done");
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
