//! Where the compressed backup goes: a file that is hashed as it is written
//! and written back to disk in small steps.
//!
//! A backup writes hundreds of megabytes to the disk the application commits
//! to. An application's commit ends with an fsync, which waits for whatever
//! the disk is busy with: a large flush of ours made it wait tens of
//! milliseconds. So the sink starts the write-back of every MiB as soon as
//! it is written, and waits for the MiB written eight steps earlier: at most
//! a few MiB are ever in flight, the compressor rarely waits, and the final
//! `fsync` (which makes the file durable) has little left to do. On Linux
//! this is `sync_file_range`, which writes pages without flushing the disk's
//! cache or the file's metadata; elsewhere each step is an `fdatasync`.

use std::fs::File;
use std::io::{BufWriter, Write};

use sha2::{Digest, Sha256};

/// Bytes per write-back step.
const STEP: u64 = 1 << 20;

/// Steps that may be in flight before the sink waits for the oldest.
const IN_FLIGHT: u64 = 8;

/// A writer that hashes and counts the bytes it writes to `file`.
pub(super) struct Sink {
    inner: BufWriter<File>,
    hasher: Sha256,
    written: u64,
    /// Bytes whose write-back has been started.
    started: u64,
    /// Bytes known to be written back.
    waited: u64,
}

impl Sink {
    pub(super) fn new(file: File) -> Sink {
        Sink {
            inner: BufWriter::with_capacity(1 << 20, file),
            hasher: Sha256::new(),
            written: 0,
            started: 0,
            waited: 0,
        }
    }

    /// Flushes, fsyncs, and returns (bytes written, hex SHA-256).
    pub(super) fn finish(self) -> std::io::Result<(u64, String)> {
        let file = self.inner.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok((self.written, format!("{:x}", self.hasher.finalize())))
    }

    fn write_back(&mut self) -> std::io::Result<()> {
        self.inner.flush()?;
        let file = self.inner.get_ref();
        let start = self.started;
        let end = self.written - self.written % STEP;
        write_back_range(file, start, end - start)?;
        let wait_to = end.saturating_sub(IN_FLIGHT * STEP);
        if wait_to > self.waited {
            wait_for_range(file, self.waited, wait_to - self.waited)?;
            self.waited = wait_to;
        }
        self.started = end;
        Ok(())
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        if self.written - self.started >= STEP {
            self.write_back()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(target_os = "linux")]
fn sync_file_range(file: &File, offset: u64, len: u64, flags: u32) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return Err(std::io::Error::other("range beyond the file size limit"));
    };
    // SAFETY: the descriptor is open for the call's duration (borrowed from
    // `file`), and the call only takes integers.
    let rc = unsafe { libc::sync_file_range(file.as_raw_fd(), offset, len, flags) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Starts writing `len` bytes from `offset` to disk without waiting.
#[cfg(target_os = "linux")]
fn write_back_range(file: &File, offset: u64, len: u64) -> std::io::Result<()> {
    sync_file_range(file, offset, len, libc::SYNC_FILE_RANGE_WRITE)
}

/// Waits until the range's pages written so far are on disk.
#[cfg(target_os = "linux")]
fn wait_for_range(file: &File, offset: u64, len: u64) -> std::io::Result<()> {
    let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE
        | libc::SYNC_FILE_RANGE_WRITE
        | libc::SYNC_FILE_RANGE_WAIT_AFTER;
    sync_file_range(file, offset, len, flags)
}

#[cfg(not(target_os = "linux"))]
fn write_back_range(file: &File, _offset: u64, _len: u64) -> std::io::Result<()> {
    file.sync_data()
}

#[cfg(not(target_os = "linux"))]
fn wait_for_range(_file: &File, _offset: u64, _len: u64) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_and_keeps_every_byte_across_write_back_steps() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out");
        let mut sink = Sink::new(File::create(&path).expect("create"));
        // Uneven pieces across many steps: ranges must line up with offsets.
        let data: Vec<u8> = (0..(11 * STEP as usize + 12_345))
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        for piece in data.chunks(77_777) {
            sink.write_all(piece).expect("write");
        }
        let (written, hash) = sink.finish().expect("finish");
        assert_eq!(written, data.len() as u64);
        assert_eq!(hash, format!("{:x}", Sha256::digest(&data)));
        assert_eq!(std::fs::read(&path).expect("read"), data);
    }
}
