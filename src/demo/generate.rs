//! Placeholder generator (replaced by the full one).
pub const SCHEMA: &str = include_str!("../schema.sql");
use std::path::Path;
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    pub patterns: u64,
    pub pattern_bytes: usize,
    pub seed: u64,
    pub now: i64,
}
impl Default for GenerateOptions {
    fn default() -> Self {
        Self {
            patterns: 5000,
            pattern_bytes: 200,
            seed: 42,
            now: 0,
        }
    }
}
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GenerateSummary {
    pub patterns: u64,
}
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("{0} already exists; refusing to overwrite it")]
    Exists(std::path::PathBuf),
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}
pub fn generate(path: &Path, opts: &GenerateOptions) -> Result<GenerateSummary, GenerateError> {
    if path.exists() {
        return Err(GenerateError::Exists(path.to_path_buf()));
    }
    let conn = rusqlite::Connection::open(path)?;
    conn.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE patterns (id TEXT PRIMARY KEY, type TEXT NOT NULL, pattern_data TEXT NOT NULL, confidence REAL NOT NULL DEFAULT 0.5, usage_count INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL, last_used TEXT, category TEXT);")?;
    Ok(GenerateSummary {
        patterns: opts.patterns.saturating_sub(opts.patterns),
    })
}
