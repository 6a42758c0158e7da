//! The chain's decisions as pure functions: what the next snapshot does, and
//! which state a restore to a moment rebuilds.

use std::time::{Duration, SystemTime};

use super::Chain;

/// What the snapshot loop does next for one database.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// No usable chain: take a full backup first (its reason, for the log).
    FullBackup(&'static str),
    /// Add a link to this chain (an index into the chains given).
    Delta(usize),
}

/// `chains` newest first. A chain continues while its full backup verifies,
/// is younger than `full_interval` and its links are whole; otherwise a new
/// full backup starts the next one.
pub fn next(chains: &[Chain], now: SystemTime, full_interval: Duration) -> Next {
    let Some((i, newest)) = chains
        .iter()
        .enumerate()
        .filter(|(_, c)| c.base.verified)
        .max_by_key(|(_, c)| c.base.taken)
    else {
        return Next::FullBackup("no verified full backup");
    };
    let age = now.duration_since(newest.base.taken).unwrap_or_default();
    if age >= full_interval {
        return Next::FullBackup("the chain's full backup is older than full_interval");
    }
    if newest.broken.is_some() {
        return Next::FullBackup("the chain has a broken link");
    }
    Next::Delta(i)
}

/// The state a restore to `at` rebuilds: a chain and how many of its links.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub chain: usize,
    pub links: usize,
    /// When that state was taken.
    pub taken: SystemTime,
}

/// The newest state taken at or before `at`, over every chain; a chain with
/// a broken link refuses moments after its last whole link when no newer
/// chain serves them. `None` when nothing was taken by then.
pub fn point_at(chains: &[Chain], at: SystemTime) -> Result<Option<Point>, String> {
    let mut best: Option<Point> = None;
    for (i, chain) in chains.iter().enumerate() {
        if chain.base.taken > at {
            continue;
        }
        let links = chain.links.iter().take_while(|l| l.taken <= at).count();
        let taken = links
            .checked_sub(1)
            .map_or(chain.base.taken, |n| chain.links[n].taken);
        let better = best
            .as_ref()
            .is_none_or(|b| (taken, chain.base.taken) > (b.taken, chains[b.chain].base.taken));
        if better {
            best = Some(Point {
                chain: i,
                links,
                taken,
            });
        }
    }
    if let Some(p) = &best {
        let chain = &chains[p.chain];
        if let (Some(why), true) = (&chain.broken, p.links == chain.links.len()) {
            let last = chain.newest_point();
            if at > last {
                return Err(format!(
                    "the chain {} cannot restore after {}: {why}",
                    chain.dir.display(),
                    super::format::stamp(last)
                ));
            }
        }
    }
    Ok(best)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backups::chain::format::{stamp, Manifest};
    use crate::backups::chain::Link;
    use crate::backups::DatabaseBackup;
    use std::path::PathBuf;

    fn t(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + s)
    }

    fn chain(base: u64, links: &[u64], verified: bool) -> Chain {
        let path = PathBuf::from(format!("/b/memory-{base}.db.zst"));
        let links = links
            .iter()
            .enumerate()
            .map(|(i, at)| Link {
                manifest: Manifest {
                    chain: String::new(),
                    sequence: i as u64 + 1,
                    taken_at: stamp(t(*at)),
                    page_size: 4096,
                    page_count: 1,
                    changed_pages: 1,
                    delta_bytes: 1,
                    delta_sha256: String::new(),
                    sha256: String::new(),
                },
                taken: t(*at),
                delta: PathBuf::new(),
            })
            .collect();
        Chain {
            base: DatabaseBackup {
                path: path.clone(),
                size: 1,
                taken: t(base),
                verified,
            },
            dir: super::super::chain_dir_of(&path),
            links,
            broken: None,
            checked: None,
        }
    }

    #[test]
    fn a_moment_is_served_by_the_newest_state_taken_at_or_before_it() {
        let chains = vec![chain(100, &[160, 220], true), chain(0, &[60, 120], true)];
        let at = |s| point_at(&chains, t(s)).expect("whole");
        assert_eq!(at(59).map(|p| (p.chain, p.links)), Some((1, 0)));
        assert_eq!(at(60).map(|p| (p.chain, p.links)), Some((1, 1)));
        // The older chain's link at 120 is newer than the newer chain's base.
        assert_eq!(at(130).map(|p| (p.chain, p.links)), Some((1, 2)));
        assert_eq!(at(170).map(|p| (p.chain, p.links)), Some((0, 1)));
        assert_eq!(at(10_000).map(|p| (p.chain, p.links)), Some((0, 2)));
        assert_eq!(at(10_000).map(|p| p.taken), Some(t(220)));
        assert!(point_at(&chains, SystemTime::UNIX_EPOCH)
            .expect("whole")
            .is_none());
    }

    #[test]
    fn a_broken_chain_refuses_later_moments_and_serves_earlier_ones() {
        let mut broken = chain(0, &[60, 120], true);
        broken.broken = Some("link 3 is missing".into());
        let chains = vec![broken];
        assert!(point_at(&chains, t(100)).expect("earlier").is_some());
        assert_eq!(
            point_at(&chains, t(120))
                .expect("at the last link")
                .map(|p| p.links),
            Some(2)
        );
        let refused = point_at(&chains, t(121)).expect_err("later");
        assert!(refused.contains("link 3 is missing"), "{refused}");
    }

    #[test]
    fn a_new_chain_starts_when_the_last_is_old_broken_or_unverified() {
        let day = Duration::from_secs(86_400);
        assert_eq!(
            next(&[], t(0), day),
            Next::FullBackup("no verified full backup")
        );
        let chains = vec![chain(100, &[160], true), chain(0, &[], true)];
        assert_eq!(next(&chains, t(200), day), Next::Delta(0));
        assert!(matches!(
            next(&chains, t(100) + day, day),
            Next::FullBackup(_)
        ));
        let unverified = vec![chain(100, &[], false), chain(0, &[], true)];
        assert_eq!(next(&unverified, t(200), day), Next::Delta(1));
        let mut broken = chains.clone();
        broken[0].broken = Some("bad".into());
        assert!(matches!(next(&broken, t(200), day), Next::FullBackup(_)));
    }
}
