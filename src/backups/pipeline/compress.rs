//! The compressor: zstd on every core, or gzip, streaming into a [`Sink`]
//! that hashes and writes back what it is given.
//!
//! It takes the copy in pieces, in order, so it can follow the copy through
//! the file while the copy is being written (see `stages`).

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use super::sink::Sink;
use crate::config::{BackupConfig, Compression};

/// A compressed file being written, hashed as it goes.
pub(super) struct Compressor {
    encoder: Encoder<Sink>,
    deadline: Instant,
}

impl Compressor {
    /// Creates `packed` (which must not exist) with the configured encoder.
    pub(super) fn create(
        packed: &Path,
        cfg: &BackupConfig,
        deadline: Instant,
    ) -> std::io::Result<Compressor> {
        let file = crate::store::private::create_new(packed)?;
        let sink = Sink::new(file);
        let encoder = match cfg.compression {
            Compression::Zstd => {
                let mut e = zstd::stream::write::Encoder::new(sink, cfg.level.clamp(1, 22))?;
                let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
                e.multithread(u32::try_from(workers).unwrap_or(1))?;
                e.include_checksum(true)?;
                Encoder::Zstd(e)
            }
            Compression::Gzip => {
                let level = u32::try_from(cfg.level.clamp(1, 9)).unwrap_or(6);
                Encoder::Gzip(flate2::write::GzEncoder::new(
                    sink,
                    flate2::Compression::new(level),
                ))
            }
        };
        Ok(Compressor { encoder, deadline })
    }

    /// Compresses the next piece of the copy.
    pub(super) fn write(&mut self, piece: &[u8]) -> std::io::Result<()> {
        if Instant::now() >= self.deadline {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "deadline passed while compressing",
            ));
        }
        match &mut self.encoder {
            Encoder::Zstd(e) => e.write_all(piece),
            Encoder::Gzip(e) => e.write_all(piece),
        }
    }

    /// Ends the stream, fsyncs, and returns (size, hex SHA-256).
    pub(super) fn finish(self) -> std::io::Result<(u64, String)> {
        let sink = match self.encoder {
            Encoder::Zstd(e) => e.finish()?,
            Encoder::Gzip(e) => e.finish()?,
        };
        sink.finish()
    }
}

enum Encoder<W: Write> {
    Zstd(zstd::stream::write::Encoder<'static, W>),
    Gzip(flate2::write::GzEncoder<W>),
}
