//! The floor every other module stands on: how caretaker opens the
//! application's SQLite files and the files it writes itself.
//!
//! Collectors, actions and backups all read databases, check them and create
//! files beside them; each of those ways is decided once, here:
//! - [`sqlite`]: monitoring connections (read-only, never creating a file,
//!   a deadline on every statement) and the memory map of full passes;
//! - [`maintenance`]: the read-write connection of the mutating actions;
//! - [`integrity`]: SQLite's own checks (`quick_check`, `integrity_check`,
//!   `foreign_key_check`) and what counts as damage;
//! - [`private`]: every file caretaker creates is 0600, every folder 0700;
//! - [`space`]: the filesystem holding a path, and its free space;
//! - [`stamp`]: whether a database file changed, without opening it.

pub mod integrity;
pub mod maintenance;
pub mod private;
pub mod space;
pub mod sqlite;
pub mod stamp;
