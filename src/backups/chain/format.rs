//! The files of a chain, byte for byte: each link's delta and manifest, and
//! how a delta is applied to the database before it.
//!
//! A delta, once zstd is taken off (a frame with its content checksum), is:
//! `CTDELTA1`, page size (u32 LE), page count of the result (u32 LE), the
//! result's 100-byte header, then one record per changed page (page number,
//! u32 LE, never 0, and the page), then a 0 page number and the number of
//! records (u32 LE). The trailer makes a delta cut short detectable even
//! inside a valid frame; the manifest's SHA-256 of the delta file and of the
//! database that results catch everything else.

use std::io::{Read, Seek, SeekFrom, Write};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

const MAGIC: &[u8; 8] = b"CTDELTA1";

/// Bytes of the SQLite header carried in every delta.
pub const HEADER_BYTES: usize = 100;

/// One link's manifest (`<sequence>.json`), written after its delta: a delta
/// without a manifest is not part of the chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The chain: the file name of its full backup.
    pub chain: String,
    /// 1 for the first delta after the full backup.
    pub sequence: u64,
    /// When the snapshot was taken (RFC 3339, UTC, milliseconds).
    pub taken_at: String,
    pub page_size: u32,
    /// Pages of the database after this delta.
    pub page_count: u32,
    /// Pages this delta carries.
    pub changed_pages: u32,
    /// Size of the delta file.
    pub delta_bytes: u64,
    /// SHA-256 of the delta file.
    pub delta_sha256: String,
    /// SHA-256 of the database once this delta is applied.
    pub sha256: String,
}

impl Manifest {
    /// The time in `taken_at`; `None` when it is not RFC 3339.
    pub fn taken(&self) -> Option<std::time::SystemTime> {
        DateTime::parse_from_rfc3339(&self.taken_at)
            .ok()
            .map(|t| t.with_timezone(&Utc).into())
    }
}

/// `taken_at`'s form of `t`.
pub fn stamp(t: std::time::SystemTime) -> String {
    DateTime::<Utc>::from(t).to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `000042.delta.zst`, `000042.json`: names that sort in chain order.
pub fn delta_name(sequence: u64) -> String {
    format!("{sequence:06}.delta.zst")
}

pub fn manifest_name(sequence: u64) -> String {
    format!("{sequence:06}.json")
}

/// The sequence number in a manifest's name.
pub fn parse_manifest_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".json")?;
    (digits.len() >= 6 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// Writes a delta's payload to `out` (the compressor) one page at a time.
pub struct DeltaWriter<W: Write> {
    out: W,
    records: u32,
}

impl<W: Write> DeltaWriter<W> {
    pub fn start(mut out: W, page_size: u32, page_count: u32) -> std::io::Result<Self> {
        out.write_all(MAGIC)?;
        out.write_all(&page_size.to_le_bytes())?;
        out.write_all(&page_count.to_le_bytes())?;
        Ok(Self { out, records: 0 })
    }

    pub fn header(&mut self, header: &[u8; HEADER_BYTES]) -> std::io::Result<()> {
        self.out.write_all(header)
    }

    pub fn page(&mut self, pgno: u32, page: &[u8]) -> std::io::Result<()> {
        self.out.write_all(&pgno.to_le_bytes())?;
        self.out.write_all(page)?;
        self.records += 1;
        Ok(())
    }

    pub fn finish(mut self) -> std::io::Result<(W, u32)> {
        self.out.write_all(&0u32.to_le_bytes())?;
        self.out.write_all(&self.records.to_le_bytes())?;
        Ok((self.out, self.records))
    }
}

fn read_u32(r: &mut impl Read) -> std::io::Result<u32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_le_bytes(b))
}

fn bad(why: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, why)
}

/// Applies the delta payload read from `input` to `db` (the database before
/// it): writes each page in place, then cuts or extends the file to the
/// result's page count. Checks the delta against `manifest` as it goes, and
/// a page 1 it carries against its header.
pub fn apply(
    mut input: impl Read,
    db: &mut (impl Write + Seek + FileLen),
    manifest: &Manifest,
) -> std::io::Result<()> {
    let mut magic = [0u8; 8];
    input.read_exact(&mut magic)?;
    if &magic != MAGIC {
        return Err(bad("not a caretaker delta".into()));
    }
    let page_size = read_u32(&mut input)?;
    let page_count = read_u32(&mut input)?;
    if page_size != manifest.page_size || page_count != manifest.page_count {
        return Err(bad(format!(
            "the delta says {page_count} pages of {page_size} bytes, its manifest {} of {}",
            manifest.page_count, manifest.page_size
        )));
    }
    if !(512..=65_536).contains(&page_size) || !page_size.is_power_of_two() {
        return Err(bad(format!("page size {page_size} is not SQLite's")));
    }
    let mut header = [0u8; HEADER_BYTES];
    input.read_exact(&mut header)?;
    let mut page = vec![0u8; page_size as usize];
    let mut records = 0u32;
    loop {
        let pgno = read_u32(&mut input)?;
        if pgno == 0 {
            break;
        }
        if pgno > page_count {
            return Err(bad(format!(
                "page {pgno} is beyond the result's {page_count} pages"
            )));
        }
        input.read_exact(&mut page)?;
        if pgno == 1 && page[..HEADER_BYTES] != header {
            return Err(bad("page 1 is not the header the delta carries".into()));
        }
        db.seek(SeekFrom::Start(u64::from(pgno - 1) * u64::from(page_size)))?;
        db.write_all(&page)?;
        records += 1;
    }
    let count = read_u32(&mut input)?;
    if count != records || count != manifest.changed_pages {
        return Err(bad(format!(
            "the delta holds {records} pages, its trailer says {count}, its manifest {}",
            manifest.changed_pages
        )));
    }
    if input.read(&mut [0u8; 1])? != 0 {
        return Err(bad("bytes after the delta's end".into()));
    }
    db.set_len(u64::from(page_count) * u64::from(page_size))
}

/// What [`apply`] needs of the file beyond writing and seeking.
pub trait FileLen {
    fn set_len(&mut self, len: u64) -> std::io::Result<()>;
}

impl FileLen for std::fs::File {
    fn set_len(&mut self, len: u64) -> std::io::Result<()> {
        std::fs::File::set_len(self, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(pages: u32, changed: u32) -> Manifest {
        Manifest {
            chain: "memory-x.db.zst".into(),
            sequence: 1,
            taken_at: stamp(std::time::SystemTime::UNIX_EPOCH),
            page_size: 512,
            page_count: pages,
            changed_pages: changed,
            delta_bytes: 0,
            delta_sha256: String::new(),
            sha256: String::new(),
        }
    }

    fn delta(pages: u32, changes: &[(u32, u8)]) -> Vec<u8> {
        let mut w = DeltaWriter::start(Vec::new(), 512, pages).expect("start");
        let mut header = [0u8; HEADER_BYTES];
        let first = changes.iter().find(|c| c.0 == 1).map_or(1, |c| c.1);
        header.fill(first);
        w.header(&header).expect("header");
        for (pgno, fill) in changes {
            w.page(*pgno, &[*fill; 512]).expect("page");
        }
        w.finish().expect("finish").0
    }

    fn base(pages: u8) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().expect("temp");
        for p in 1..=pages {
            f.write_all(&[p; 512]).expect("write");
        }
        f
    }

    #[test]
    fn a_delta_rewrites_its_pages_and_grows_or_shrinks_the_file() {
        let f = base(3);
        let mut file = f.reopen().expect("reopen");
        let grow = delta(5, &[(2, 9), (5, 7)]);
        apply(&grow[..], &mut file, &manifest(5, 2)).expect("apply");
        let bytes = std::fs::read(f.path()).expect("read");
        let firsts: Vec<u8> = bytes.chunks(512).map(|p| p[0]).collect();
        // Page 4 was never written: a hole of zeros, as a new page is before it is used.
        assert_eq!(firsts, vec![1, 9, 3, 0, 7]);
        let shrink = delta(2, &[(1, 4)]);
        apply(&shrink[..], &mut file, &manifest(2, 1)).expect("apply");
        let bytes = std::fs::read(f.path()).expect("read");
        assert_eq!(bytes.len(), 1024);
        assert_eq!(bytes[0], 4);
        assert_eq!(bytes[512], 9);
    }

    #[test]
    fn a_delta_cut_short_or_disagreeing_with_its_manifest_is_refused() {
        let good = delta(3, &[(1, 1), (2, 5)]);
        for (bytes, m) in [
            (good[..good.len() - 3].to_vec(), manifest(3, 2)),
            (good.clone(), manifest(3, 1)),
            (good.clone(), manifest(4, 2)),
            ([&good[..], &[0]].concat(), manifest(3, 2)),
        ] {
            let f = base(3);
            let mut file = f.reopen().expect("reopen");
            assert!(apply(&bytes[..], &mut file, &m).is_err());
        }
    }

    #[test]
    fn manifest_names_sort_in_chain_order_and_parse_back() {
        assert_eq!(parse_manifest_name(&manifest_name(42)), Some(42));
        assert!(manifest_name(9) < manifest_name(10));
        assert_eq!(parse_manifest_name("pages.json"), None);
        assert_eq!(parse_manifest_name(".000001.json.1-2.tmp"), None);
    }
}
