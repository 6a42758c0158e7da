//! Which pages changed: a hash of every page of the chain's newest state,
//! kept beside the chain (`pages.xxh3`), compared with the live database's
//! pages read inside one read transaction.
//!
//! Reading every page is the price of never touching the application (no
//! hook, no WAL parsing, no checkpoint): one pass through the page cache,
//! XXH3-128 per page (collisions are out of reach; the result's SHA-256 in
//! the manifest checks the rest) and SHA-256 of the whole for the manifest.
//! The hash file carries the sequence it describes and its own checksum: a
//! crash between a link and its hash file, or a damaged hash file, is
//! noticed and the hashes are rebuilt from the chain itself.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Instant;

use rusqlite::Connection;
use sha2::{Digest, Sha256};
use xxhash_rust::xxh3::xxh3_128;

use super::format::{DeltaWriter, HEADER_BYTES};
use crate::store::private;

const MAGIC: &[u8; 8] = b"CTPAGES1";

/// The name of the hash file in a chain's folder.
pub const HASHES_NAME: &str = "pages.xxh3";

/// The page hashes of one state of a chain.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PageHashes {
    /// The link whose result these are (0: the full backup).
    pub sequence: u64,
    pub page_size: u32,
    pub hashes: Vec<u128>,
}

impl PageHashes {
    /// Reads a hash file; `None` when it is missing, cut short or damaged.
    pub fn load(path: &Path) -> Option<Self> {
        let bytes = std::fs::read(path).ok()?;
        let (body, sum) = bytes.split_at_checked(bytes.len().checked_sub(16)?)?;
        if xxh3_128(body).to_le_bytes() != sum || body.len() < 24 || &body[..8] != MAGIC {
            return None;
        }
        let sequence = u64::from_le_bytes(body[8..16].try_into().ok()?);
        let page_size = u32::from_le_bytes(body[16..20].try_into().ok()?);
        let count = u32::from_le_bytes(body[20..24].try_into().ok()?) as usize;
        let hashes: Vec<u128> = body[24..]
            .chunks_exact(16)
            .filter_map(|c| c.try_into().ok().map(u128::from_le_bytes))
            .collect();
        (hashes.len() == count).then_some(Self {
            sequence,
            page_size,
            hashes,
        })
    }

    /// Writes the hash file to a temporary name, fsyncs it and renames it.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let mut body = Vec::with_capacity(40 + self.hashes.len() * 16);
        body.extend_from_slice(MAGIC);
        body.extend_from_slice(&self.sequence.to_le_bytes());
        body.extend_from_slice(&self.page_size.to_le_bytes());
        let count = u32::try_from(self.hashes.len()).unwrap_or(u32::MAX);
        body.extend_from_slice(&count.to_le_bytes());
        for h in &self.hashes {
            body.extend_from_slice(&h.to_le_bytes());
        }
        let sum = xxh3_128(&body).to_le_bytes();
        body.extend_from_slice(&sum);
        write_replacing(path, &body)
    }

    /// The hashes of a database file's pages (a full backup decompressed,
    /// or a chain rebuilt), with its SHA-256.
    pub fn of_file(path: &Path, sequence: u64) -> std::io::Result<(Self, String)> {
        let mut file = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(path)?);
        let mut header = [0u8; HEADER_BYTES];
        file.read_exact(&mut header)?;
        let page_size = header_page_size(&header).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, "not an SQLite database")
        })?;
        let mut page = vec![0u8; page_size as usize];
        page[..HEADER_BYTES].copy_from_slice(&header);
        file.read_exact(&mut page[HEADER_BYTES..])?;
        let mut sha = Sha256::new();
        let mut hashes = Vec::new();
        loop {
            sha.update(&page);
            hashes.push(xxh3_128(&page));
            match file.read_exact(&mut page) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(e),
            }
        }
        let hashes = Self {
            sequence,
            page_size,
            hashes,
        };
        Ok((hashes, format!("{:x}", sha.finalize())))
    }
}

/// The page size an SQLite header says (bytes 16-17, 1 meaning 65,536).
pub fn header_page_size(header: &[u8; HEADER_BYTES]) -> Option<u32> {
    if !header.starts_with(b"SQLite format 3\0") {
        return None;
    }
    let size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65_536,
        n => u32::from(n),
    };
    (size >= 512 && size.is_power_of_two()).then_some(size)
}

/// `bytes` to a hidden temporary beside `path`, fsynced, renamed over it,
/// and the folder fsynced.
pub fn write_replacing(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temp = crate::backups::temporaries::hidden_sibling(
        path,
        &format!("{}.tmp", crate::backups::temporaries::run_tag()),
    );
    let result = (|| {
        let mut f = private::create_new(&temp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&temp, path)?;
        sync_folder(path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

pub fn sync_folder(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) => std::fs::File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

/// What one pass over the live database found.
#[derive(Debug)]
pub struct Scan {
    /// The snapshot's hashes (sequence left to the caller).
    pub hashes: PageHashes,
    /// SHA-256 of the snapshot's pages, page 1 marked rollback-mode.
    pub sha256: String,
    /// Pages written to the delta.
    pub changed: u32,
    /// Whether the snapshot differs from `previous` at all.
    pub differs: bool,
    /// A moment just after the read transaction began: the snapshot holds
    /// no commit made after it.
    pub pinned_at: std::time::SystemTime,
}

/// Why a scan stopped.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Bad(String),
    #[error("the snapshot did not finish in time")]
    Deadline,
}

/// Reads every page of `conn`'s database inside one read transaction and
/// writes those whose hash differs from `previous` to `out` as a delta. Page
/// 1 is marked rollback-mode as in full backups (see `pipeline::copy`), so
/// a rebuilt database never needs a `-wal`.
pub fn scan<W: Write>(
    conn: &Connection,
    previous: &PageHashes,
    out: W,
    deadline: Instant,
) -> Result<(Scan, W), ScanError> {
    // The SELECT starts the read transaction (BEGIN alone takes no snapshot).
    conn.execute_batch("BEGIN")?;
    let result = scan_pinned(conn, previous, out, deadline);
    conn.execute_batch("COMMIT")?;
    result
}

fn scan_pinned<W: Write>(
    conn: &Connection,
    previous: &PageHashes,
    out: W,
    deadline: Instant,
) -> Result<(Scan, W), ScanError> {
    let (pages, page_size): (i64, i64) = conn.query_row(
        "SELECT (SELECT page_count FROM pragma_page_count), \
                (SELECT page_size FROM pragma_page_size)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    // The snapshot is pinned: nothing committed from here on is in it.
    let pinned_at = std::time::SystemTime::now();
    let too_large = || ScanError::Bad(format!("{pages} pages of {page_size} bytes"));
    let page_count = u32::try_from(pages).map_err(|_| too_large())?;
    let page_size = u32::try_from(page_size).map_err(|_| too_large())?;
    let same_size = previous.page_size == page_size;
    let mut delta = DeltaWriter::start(out, page_size, page_count)?;
    let mut hashes = Vec::with_capacity(page_count as usize);
    let mut sha = Sha256::new();
    let mut first: Vec<u8>;
    let mut stmt = conn.prepare("SELECT pgno, data FROM sqlite_dbpage")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let pgno: i64 = row.get(0)?;
        let mut page = row.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?;
        let expected = hashes.len() as i64 + 1;
        if pgno != expected || page.len() != page_size as usize {
            return Err(ScanError::Bad(format!(
                "page {pgno} ({} bytes) where page {expected} of {page_size} bytes was due",
                page.len()
            )));
        }
        if pgno == 1 {
            first = page.to_vec();
            first[18] = 1;
            first[19] = 1;
            page = &first;
            let mut header = [0u8; HEADER_BYTES];
            header.copy_from_slice(&page[..HEADER_BYTES]);
            delta.header(&header)?;
        }
        let hash = xxh3_128(page);
        sha.update(page);
        let index = hashes.len();
        if !same_size || previous.hashes.get(index) != Some(&hash) {
            // Page numbers fit: the count did.
            delta.page(pgno as u32, page)?;
        }
        hashes.push(hash);
        if hashes.len() % 4096 == 0 && Instant::now() >= deadline {
            return Err(ScanError::Deadline);
        }
    }
    if hashes.len() != page_count as usize {
        return Err(ScanError::Bad(format!(
            "read {} pages of a {page_count}-page snapshot",
            hashes.len()
        )));
    }
    let (out, changed) = delta.finish()?;
    // A shorter database is a change even when every kept page is the same.
    let differs = changed > 0 || hashes.len() != previous.hashes.len() || !same_size;
    let scan = Scan {
        hashes: PageHashes {
            sequence: 0,
            page_size,
            hashes,
        },
        sha256: format!("{:x}", sha.finalize()),
        changed,
        differs,
        pinned_at,
    };
    Ok((scan, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_file_reads_back_and_a_damaged_one_reads_as_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(HASHES_NAME);
        let hashes = PageHashes {
            sequence: 7,
            page_size: 4096,
            hashes: vec![1, u128::MAX, 42],
        };
        hashes.save(&path).expect("save");
        assert_eq!(PageHashes::load(&path), Some(hashes));
        let mut bytes = std::fs::read(&path).expect("read");
        bytes[30] ^= 1;
        std::fs::write(&path, &bytes).expect("write");
        assert_eq!(PageHashes::load(&path), None);
        std::fs::write(&path, &bytes[..20]).expect("write");
        assert_eq!(PageHashes::load(&path), None);
        assert_eq!(PageHashes::load(&dir.path().join("missing")), None);
    }

    #[test]
    fn a_scan_writes_only_the_pages_that_changed_and_notices_a_shrink() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db");
        let conn = Connection::open(&path).expect("open");
        conn.execute_batch(
            "CREATE TABLE t (v BLOB); \
             WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 199) \
             INSERT INTO t SELECT randomblob(1000) FROM n;",
        )
        .expect("fill");
        let far = Instant::now() + std::time::Duration::from_secs(60);
        let (first, _) = scan(&conn, &PageHashes::default(), Vec::new(), far).expect("scan");
        let pages = first.hashes.hashes.len() as u32;
        assert_eq!(first.changed, pages, "everything is new");
        let (same, _) = scan(&conn, &first.hashes, Vec::new(), far).expect("scan");
        assert!(!same.differs);
        assert_eq!(same.changed, 0);
        assert_eq!(same.sha256, first.sha256);
        conn.execute("UPDATE t SET v = randomblob(1000) WHERE rowid = 100", [])
            .expect("update");
        let (one, _) = scan(&conn, &first.hashes, Vec::new(), far).expect("scan");
        // The row's page and page 1 (its change counter).
        assert!(
            one.differs && (1..=3).contains(&one.changed),
            "{}",
            one.changed
        );
        conn.execute_batch("DELETE FROM t WHERE rowid > 20; VACUUM;")
            .expect("shrink");
        let (small, _) = scan(&conn, &one.hashes, Vec::new(), far).expect("scan");
        assert!(small.differs);
        assert!(small.hashes.hashes.len() < one.hashes.hashes.len());
    }
}
