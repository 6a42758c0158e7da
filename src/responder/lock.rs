//! The lock that serialises maintenance of one database across processes:
//! a file beside the database, held with an advisory lock, so `caretaker
//! run`, `caretaker restore`, `caretaker migrate`, the snapshot loop and the
//! daemon's executor never change one database at once.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::actions::ActionError;
use crate::store::private;

/// The lock file that serialises maintenance of one database across processes.
pub fn lock_path(database: &Path) -> PathBuf {
    let mut p = database.as_os_str().to_owned();
    p.push(".caretaker-lock");
    PathBuf::from(p)
}

/// Takes the cross-process lock, waiting up to `wait`. The lock file is
/// created 0600 and never through a link: a link planted at its path would
/// make caretaker create (or, run as root, clobber) a file anywhere.
pub fn lock_file(database: &Path, wait: Duration) -> Result<File, ActionError> {
    let path = lock_path(database);
    let file = private::open_or_create(&path).map_err(|e| {
        if private::is_link_refusal(&e) {
            ActionError::Refused(format!(
                "the lock file {} is a symbolic link; caretaker does not follow it (remove it)",
                path.display()
            ))
        } else {
            ActionError::Io(e)
        }
    })?;
    let until = Instant::now() + wait;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < until => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(ActionError::Busy(
                    "another caretaker process is maintaining this database".into(),
                ))
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
        }
    }
}
