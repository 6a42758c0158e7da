//! How long work says how far it has got, without printing anything itself.
//!
//! A backup, a verification or a restore of a large database takes minutes.
//! The library reports its stages and bytes to a [`Reporter`]; what a person
//! sees is decided at the edge: `crate::cli` gives `caretaker run`,
//! `backups verify` and `restore` a reporter that draws a bar on a terminal
//! or writes log lines otherwise, and the daemon gives none (its jobs and
//! metrics say what happened). A reporter without a sink costs a branch.

use std::io::Read;
use std::sync::Arc;

/// Where progress goes: the command line's bar or log lines.
pub trait Sink: Send + Sync {
    /// A stage starts: `what` it does, and its `total` bytes when known.
    fn begin(&self, what: &str, total: Option<u64>);
    /// The current stage has done `done` bytes in all.
    fn set(&self, done: u64);
    /// The current stage is over.
    fn end(&self);
}

/// A handle to a [`Sink`], or to nothing; cheap to clone.
#[derive(Clone, Default)]
pub struct Reporter(Option<Arc<dyn Sink>>);

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Reporter(sink)"
        } else {
            "Reporter(none)"
        })
    }
}

impl Reporter {
    pub fn new(sink: Arc<dyn Sink>) -> Self {
        Self(Some(sink))
    }

    /// Reports nowhere.
    pub fn none() -> Self {
        Self(None)
    }

    /// Starts a stage, which ends when the returned [`Stage`] is dropped.
    pub fn stage(&self, what: &str, total: Option<u64>) -> Stage {
        if let Some(sink) = &self.0 {
            sink.begin(what, total);
        }
        Stage {
            sink: self.0.clone(),
            done: 0,
        }
    }
}

/// One stage of a piece of work; ends on drop.
pub struct Stage {
    sink: Option<Arc<dyn Sink>>,
    done: u64,
}

impl Stage {
    /// `bytes` more are done.
    pub fn advance(&mut self, bytes: u64) {
        self.set(self.done.saturating_add(bytes));
    }

    /// `done` bytes are done in all.
    pub fn set(&mut self, done: u64) {
        self.done = done;
        if let Some(sink) = &self.sink {
            sink.set(done);
        }
    }

    /// A reader that advances this stage by every byte read from `inner`.
    pub fn reader<R: Read>(self, inner: R) -> Counted<R> {
        Counted { inner, stage: self }
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        if let Some(sink) = &self.sink {
            sink.end();
        }
    }
}

/// A reader that reports the bytes read through it (see [`Stage::reader`]).
pub struct Counted<R> {
    inner: R,
    stage: Stage,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.stage.advance(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Records what a sink is told, as lines.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);

    impl Sink for Recorder {
        fn begin(&self, what: &str, total: Option<u64>) {
            self.0
                .lock()
                .unwrap()
                .push(format!("begin {what} {total:?}"));
        }
        fn set(&self, done: u64) {
            self.0.lock().unwrap().push(format!("set {done}"));
        }
        fn end(&self) {
            self.0.lock().unwrap().push("end".into());
        }
    }

    #[test]
    fn a_counted_reader_reports_every_byte_and_the_stage_ends_once() {
        let recorder = Arc::new(Recorder::default());
        let reporter = Reporter::new(recorder.clone());
        let data = vec![7u8; 10_000];
        let mut reader = reporter.stage("reading", Some(10_000)).reader(&data[..]);
        let mut buf = [0u8; 4096];
        while reader.read(&mut buf).expect("read") > 0 {}
        drop(reader);
        let seen = recorder.0.lock().unwrap().clone();
        assert_eq!(
            seen.first().map(String::as_str),
            Some("begin reading Some(10000)")
        );
        assert_eq!(seen.last().map(String::as_str), Some("end"));
        assert!(seen.contains(&"set 4096".to_string()), "{seen:?}");
        assert!(seen.contains(&"set 10000".to_string()), "{seen:?}");
        assert_eq!(seen.iter().filter(|l| *l == "end").count(), 1);
    }

    #[test]
    fn no_sink_reports_nothing_and_reads_the_same() {
        let data = b"abc".to_vec();
        let mut out = Vec::new();
        Reporter::none()
            .stage("x", None)
            .reader(&data[..])
            .read_to_end(&mut out)
            .expect("read");
        assert_eq!(out, data);
    }
}
