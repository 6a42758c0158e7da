//! Runs one child process under a deadline, and makes sure nothing it started
//! outlives the action.
//!
//! The child leads a process group of its own, so whatever it forks (a shell's
//! `sleep`, a pipeline) is in that group and is killed with it: killing only
//! the child left grandchildren holding the output pipes, and caretaker waited
//! for them (with the database's maintenance lock held) long past the timeout.
//! The pipes are read by `poll` from this one thread into bounded buffers, so
//! reading stops at the deadline whoever holds the pipes, and a chatty program
//! costs at most [`KEEP`] bytes per stream.

use std::io::{self, Read};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::process::{kill_process_group, waitid, Pid, Signal, WaitId, WaitIdOptions};
use tokio_util::sync::CancellationToken;

/// How much of each stream is kept (its end): enough for an error message.
pub const KEEP: usize = 2048;

/// After the child exits, how long output is still read from processes that
/// left its group (`setsid`) and kept the pipes open.
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(500);

/// How often the loop looks at the clock, the child and the stop token.
const TICK: Duration = Duration::from_millis(20);

/// The end of one output stream, and how much was written in all.
#[derive(Debug, Default)]
pub struct Tail {
    kept: Vec<u8>,
    pub total: u64,
}

impl Tail {
    fn push(&mut self, chunk: &[u8]) {
        self.total += chunk.len() as u64;
        self.kept.extend_from_slice(chunk);
        if self.kept.len() > KEEP {
            let extra = self.kept.len() - KEEP;
            self.kept.drain(..extra);
        }
    }

    /// The kept text, saying how much was dropped before it.
    pub fn text(&self) -> String {
        let text = String::from_utf8_lossy(&self.kept);
        if self.total > self.kept.len() as u64 {
            format!(
                "[output truncated: {} bytes written, last {} kept] {text}",
                self.total,
                self.kept.len()
            )
        } else {
            text.into_owned()
        }
    }
}

/// How the run ended.
#[derive(Debug)]
pub enum Ending {
    Exited(ExitStatus),
    /// The deadline passed; the group was killed.
    TimedOut,
    /// Shutdown asked it to stop; the group was killed.
    Stopped,
}

#[derive(Debug)]
pub struct Finished {
    pub ending: Ending,
    pub stdout: Tail,
    pub stderr: Tail,
}

/// One output pipe while it is open.
enum Pipe {
    Out(ChildStdout),
    Err(ChildStderr),
}

impl Pipe {
    fn read_into(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Pipe::Out(p) => p.read(buf),
            Pipe::Err(p) => p.read(buf),
        }
    }

    fn poll_fd(&self) -> PollFd<'_> {
        let flags = PollFlags::IN | PollFlags::HUP | PollFlags::ERR;
        match self {
            Pipe::Out(p) => PollFd::from_borrowed_fd(p.as_fd(), flags),
            Pipe::Err(p) => PollFd::from_borrowed_fd(p.as_fd(), flags),
        }
    }
}

/// Starts `command` in a new process group with no input and runs it until
/// it exits, `deadline` passes or `stop` is cancelled. Whatever is left of
/// its group when it ends is killed.
pub fn run(
    mut command: Command,
    deadline: Instant,
    stop: &CancellationToken,
) -> io::Result<Finished> {
    let mut child = command
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let group = Pid::from_child(&child);
    let mut pipes: [Option<Pipe>; 2] = [
        child.stdout.take().map(Pipe::Out),
        child.stderr.take().map(Pipe::Err),
    ];
    let mut tails = [Tail::default(), Tail::default()];
    let mut exited_at: Option<Instant> = None;
    let ending = loop {
        let now = Instant::now();
        let wait = deadline.saturating_duration_since(now).min(TICK);
        read_ready(&mut pipes, &mut tails, wait)?;
        if exited_at.is_none() && has_exited(group) {
            // The child is a zombie until reaped, so its group id cannot be
            // reused yet: stragglers are killed before it is reaped.
            kill_group(group);
            exited_at = Some(Instant::now());
        }
        if let Some(at) = exited_at {
            if pipes.iter().all(Option::is_none) || at.elapsed() >= DRAIN_AFTER_EXIT {
                break None;
            }
        } else if stop.is_cancelled() {
            kill_group(group);
            break Some(Ending::Stopped);
        } else if Instant::now() >= deadline {
            kill_group(group);
            break Some(Ending::TimedOut);
        }
    };
    // Whatever is already in the pipes, without waiting for more.
    read_ready(&mut pipes, &mut tails, Duration::ZERO)?;
    drop(pipes);
    let status = reap(&mut child)?;
    let [stdout, stderr] = tails;
    Ok(Finished {
        ending: ending.unwrap_or(Ending::Exited(status)),
        stdout,
        stderr,
    })
}

/// Waits up to `wait` for output, reads what is there, closes pipes at EOF.
fn read_ready(
    pipes: &mut [Option<Pipe>; 2],
    tails: &mut [Tail; 2],
    wait: Duration,
) -> io::Result<()> {
    let open: Vec<usize> = (0..pipes.len()).filter(|i| pipes[*i].is_some()).collect();
    if open.is_empty() {
        std::thread::sleep(wait);
        return Ok(());
    }
    let ready: Vec<usize> = {
        let mut fds: Vec<PollFd<'_>> = pipes.iter().flatten().map(Pipe::poll_fd).collect();
        let timeout = Timespec::try_from(wait).unwrap_or(Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        });
        match poll(&mut fds, Some(&timeout)) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        fds.iter()
            .zip(&open)
            .filter(|(fd, _)| !fd.revents().is_empty())
            .map(|(_, i)| *i)
            .collect()
    };
    let mut buf = [0u8; 8192];
    for i in ready {
        if let Some(pipe) = pipes[i].as_mut() {
            match pipe.read_into(&mut buf) {
                Ok(0) => pipes[i] = None,
                Ok(n) => tails[i].push(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => pipes[i] = None,
            }
        }
    }
    Ok(())
}

/// Whether the child has exited, without reaping it.
fn has_exited(pid: Pid) -> bool {
    let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
    matches!(waitid(WaitId::Pid(pid), options), Ok(Some(_)))
}

fn kill_group(group: Pid) {
    // ESRCH (nobody left) is the usual answer once the child has exited.
    let _ = kill_process_group(group, Signal::KILL);
}

fn reap(child: &mut Child) -> io::Result<ExitStatus> {
    child.wait()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tail_keeps_the_end_and_counts_everything() {
        let mut tail = Tail::default();
        tail.push(b"hello ");
        assert_eq!(tail.text(), "hello ");
        for _ in 0..1000 {
            tail.push(b"0123456789");
        }
        tail.push(b"end");
        assert_eq!(tail.kept.len(), KEEP);
        assert_eq!(tail.total, 6 + 10_000 + 3);
        let text = tail.text();
        assert!(text.starts_with("[output truncated: 10009 bytes written, last 2048 kept]"));
        assert!(text.ends_with("789end"), "{text}");
    }
}
