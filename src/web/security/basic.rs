//! `basic_auth_users`: HTTP basic authentication against bcrypt hashes.
//!
//! A bcrypt check costs tens of milliseconds by design, and Prometheus sends
//! the same credentials on every scrape. So a pair that has verified once is
//! remembered, as a SHA-256 digest salted with a secret drawn when the file
//! is loaded (never the password itself), and later requests with it cost a
//! hash. A pair that fails is never remembered: each wrong guess pays a full
//! bcrypt check, and so does a guess for an unknown user (checked against a
//! configured hash and then refused), so probing costs at least what a
//! successful login costs. Checks run on the blocking pool, at most
//! [`CONCURRENT_CHECKS`] at once, so a flood of guesses cannot take the
//! async workers or every core.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

use base64::Engine;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

/// bcrypt checks running at once.
pub const CONCURRENT_CHECKS: usize = 2;

/// Verified pairs remembered; past this the memory starts again.
const REMEMBERED: usize = 1024;

/// The users of a web config file and the pairs verified so far.
#[derive(Debug)]
pub struct BasicUsers {
    /// User name to bcrypt hash.
    hashes: BTreeMap<String, String>,
    salt: [u8; 32],
    verified: Mutex<HashSet<[u8; 32]>>,
    checks: Semaphore,
}

impl BasicUsers {
    /// Takes the users of a file; refuses a hash that is not bcrypt.
    pub(super) fn new(hashes: BTreeMap<String, String>) -> Result<BasicUsers, String> {
        for (user, hash) in &hashes {
            if user.contains(':') {
                return Err(format!("basic_auth_users: user name {user:?} contains ':'"));
            }
            if hash.parse::<bcrypt::HashParts>().is_err() {
                return Err(format!(
                    "basic_auth_users: the hash of {user:?} is not a bcrypt hash (make one with htpasswd -nBC 10 {user})"
                ));
            }
        }
        Ok(BasicUsers {
            hashes,
            salt: rand::random(),
            verified: Mutex::new(HashSet::new()),
            checks: Semaphore::new(CONCURRENT_CHECKS),
        })
    }

    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    fn digest(&self, user: &str, password: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.salt);
        h.update((user.len() as u64).to_le_bytes());
        h.update(user.as_bytes());
        h.update(password.as_bytes());
        h.finalize().into()
    }

    /// Whether `user` with `password` is let in.
    pub async fn verify(&self, user: &str, password: &str) -> bool {
        let digest = self.digest(user, password);
        if self.remembered(&digest) {
            return true;
        }
        let (known, hash) = match self.hashes.get(user) {
            Some(hash) => (true, hash.clone()),
            // Same cost as a known user's check, and refused whatever it says.
            None => match self.hashes.values().next() {
                Some(hash) => (false, hash.clone()),
                None => return false,
            },
        };
        let Ok(_permit) = self.checks.acquire().await else {
            return false;
        };
        let password = password.to_owned();
        let matched = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(false);
        if known && matched {
            let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
            if verified.len() >= REMEMBERED {
                verified.clear();
            }
            verified.insert(digest);
        }
        known && matched
    }

    fn remembered(&self, digest: &[u8; 32]) -> bool {
        self.verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(digest)
    }
}

/// The user name and password of an `Authorization: Basic` value (the
/// scheme's name is case-insensitive).
pub fn credentials(header: &str) -> Option<(String, String)> {
    let (scheme, rest) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> BasicUsers {
        // Cost 4, the lowest, keeps the test quick.
        let hash = bcrypt::hash("right horse", 4).unwrap();
        BasicUsers::new(BTreeMap::from([("prometheus".to_string(), hash)])).unwrap()
    }

    #[tokio::test]
    async fn the_right_pair_passes_and_is_remembered_wrong_ones_are_not() {
        let users = users();
        assert!(users.verify("prometheus", "right horse").await);
        assert!(users.remembered(&users.digest("prometheus", "right horse")));
        assert!(users.verify("prometheus", "right horse").await);
        assert!(!users.verify("prometheus", "wrong horse").await);
        assert!(!users.verify("someone", "right horse").await);
        assert_eq!(users.verified.lock().unwrap().len(), 1);
    }

    #[test]
    fn hashes_that_are_not_bcrypt_are_refused() {
        let e =
            BasicUsers::new(BTreeMap::from([("a".to_string(), "secret".to_string())])).unwrap_err();
        assert!(e.contains("not a bcrypt hash"), "{e}");
    }

    #[test]
    fn basic_credentials_are_decoded() {
        assert_eq!(
            credentials("Basic cHJvbWV0aGV1czpwYTpzcw=="),
            Some(("prometheus".into(), "pa:ss".into()))
        );
        assert_eq!(
            credentials("basic cHJvbWV0aGV1czpwYTpzcw==").map(|c| c.0),
            Some("prometheus".into())
        );
        assert_eq!(credentials("Bearer abc"), None);
        assert_eq!(credentials("Basic !!!"), None);
    }
}
