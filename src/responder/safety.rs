//! Pure decisions that keep automatic maintenance from running away:
//! cooldown and circuit breaker, computed from the job history.
//!
//! Runs by hand (API, CLI) are a person's decision: they never use up an
//! automatic job's cooldown or the breaker's run budget. They still say
//! whether the action works: a failure by hand counts toward the consecutive
//! failures that open the breaker, and a success by hand closes it.

use std::time::Duration;

use crate::responder::job::SkipReason;

/// Why a job must not run now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    Cooldown,
    /// Too many consecutive failures.
    BreakerFailures,
    /// Too many runs within the window.
    BreakerRate,
}

impl Hold {
    /// The `reason` label and audit text.
    pub fn reason(self) -> SkipReason {
        match self {
            Hold::Cooldown => SkipReason::Cooldown,
            Hold::BreakerFailures | Hold::BreakerRate => SkipReason::Breaker,
        }
    }

    /// The job's detail: the hold's snake_case name, then why.
    pub fn detail(self, limits: &Limits) -> String {
        match self {
            Hold::Cooldown => format!(
                "cooldown: the last run started less than {} ago",
                humantime::format_duration(limits.cooldown)
            ),
            Hold::BreakerFailures => {
                format!("breaker_failures: the last {} runs failed", limits.failures)
            }
            Hold::BreakerRate => format!(
                "breaker_rate: {} runs within {}",
                limits.max_runs,
                humantime::format_duration(limits.window)
            ),
        }
    }
}

/// Breaker settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub cooldown: Duration,
    pub max_runs: u32,
    pub window: Duration,
    pub failures: u32,
}

impl Limits {
    /// The breaker of `[responder]`, with `cooldown` (a rule's own setting).
    pub fn of(responder: &crate::config::ResponderConfig, cooldown: Duration) -> Limits {
        Limits {
            cooldown,
            max_runs: responder.breaker_max_runs,
            window: responder.breaker_window,
            failures: responder.breaker_failures,
        }
    }
}

/// One earlier run of an action on a database.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Attempt {
    /// When it started (Unix seconds).
    pub at: f64,
    pub ok: bool,
    /// Started by a person (API or CLI) rather than a webhook or schedule.
    pub by_hand: bool,
}

/// Decides from the latest attempts, newest first.
pub fn check(attempts: &[Attempt], now: f64, limits: &Limits) -> Option<Hold> {
    if breaker_open_failures(attempts, limits) {
        return Some(Hold::BreakerFailures);
    }
    let since = now - limits.window.as_secs_f64();
    let mut automatic = attempts.iter().filter(|a| !a.by_hand);
    let in_window = automatic.clone().filter(|a| a.at >= since).count();
    if in_window >= limits.max_runs as usize {
        return Some(Hold::BreakerRate);
    }
    match automatic.next() {
        Some(last) if now - last.at < limits.cooldown.as_secs_f64() => Some(Hold::Cooldown),
        _ => None,
    }
}

/// Open after `failures` consecutive failed attempts, by hand or not; a
/// success closes it, so a person closes it by running the action by hand.
pub fn breaker_open_failures(attempts: &[Attempt], limits: &Limits) -> bool {
    let failures = limits.failures as usize;
    attempts.len() >= failures && attempts.iter().take(failures).all(|a| !a.ok)
}

/// How long until another run fits when `recent` (creation times within the
/// window, any order) already holds `max_runs`; `None` when one fits now.
pub fn rate_hold(recent: &[f64], now: f64, max_runs: u32, window: Duration) -> Option<Duration> {
    let since = now - window.as_secs_f64();
    let mut inside: Vec<f64> = recent.iter().copied().filter(|t| *t >= since).collect();
    if inside.len() < max_runs as usize {
        return None;
    }
    inside.sort_by(f64::total_cmp);
    // The run that has to leave the window before one more fits.
    let leaving = inside[inside.len() - max_runs as usize];
    Some(Duration::from_secs_f64((leaving - since).max(0.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auto(list: &[(f64, bool)]) -> Vec<Attempt> {
        list.iter()
            .map(|&(at, ok)| Attempt {
                at,
                ok,
                by_hand: false,
            })
            .collect()
    }

    const LIMITS: Limits = Limits {
        cooldown: Duration::from_secs(600),
        max_runs: 3,
        window: Duration::from_secs(3600),
        failures: 2,
    };

    #[test]
    fn cooldown_holds_until_it_has_passed() {
        let now = 10_000.0;
        assert_eq!(check(&auto(&[]), now, &LIMITS), None);
        assert_eq!(
            check(&auto(&[(now - 599.0, true)]), now, &LIMITS),
            Some(Hold::Cooldown)
        );
        assert_eq!(check(&auto(&[(now - 600.0, true)]), now, &LIMITS), None);
    }

    #[test]
    fn consecutive_failures_open_the_breaker_and_a_success_closes_it() {
        let now = 100_000.0;
        let failed_twice = [(now - 5000.0, false), (now - 9000.0, false)];
        assert_eq!(
            check(&auto(&failed_twice), now, &LIMITS),
            Some(Hold::BreakerFailures)
        );
        let recovered = [
            (now - 4000.0, true),
            (now - 5000.0, false),
            (now - 9000.0, false),
        ];
        assert_eq!(check(&auto(&recovered), now, &LIMITS), None);
    }

    #[test]
    fn too_many_runs_in_the_window_open_the_breaker() {
        let now = 100_000.0;
        let runs = [
            (now - 700.0, true),
            (now - 1400.0, true),
            (now - 2100.0, true),
        ];
        assert_eq!(check(&auto(&runs), now, &LIMITS), Some(Hold::BreakerRate));
        let older = [
            (now - 700.0, true),
            (now - 1400.0, true),
            (now - 3700.0, true),
        ];
        assert_eq!(check(&auto(&older), now, &LIMITS), None);
    }

    #[test]
    fn runs_by_hand_use_no_budget_but_tell_the_breaker_whether_the_action_works() {
        let now = 100_000.0;
        let by_hand = |at: f64, ok: bool| Attempt {
            at,
            ok,
            by_hand: true,
        };
        // Eight runs by hand within the window: no cooldown, no rate limit.
        let many: Vec<Attempt> = (1..=8).map(|i| by_hand(now - f64::from(i), true)).collect();
        assert_eq!(check(&many, now, &LIMITS), None);
        // Failures by hand count as failures of the action.
        let failing: Vec<Attempt> = (1..=2)
            .map(|i| by_hand(now - f64::from(i), false))
            .collect();
        assert_eq!(check(&failing, now, &LIMITS), Some(Hold::BreakerFailures));
        // A success by hand closes a breaker opened by automatic failures.
        let mut closed = vec![by_hand(now - 10.0, true)];
        closed.extend(auto(&[(now - 5000.0, false), (now - 9000.0, false)]));
        assert_eq!(check(&closed, now, &LIMITS), None);
        assert_eq!(
            check(&closed[1..], now, &LIMITS),
            Some(Hold::BreakerFailures)
        );
    }

    #[test]
    fn the_api_rate_says_when_the_next_run_fits() {
        let window = Duration::from_secs(3600);
        let now = 10_000.0;
        assert_eq!(rate_hold(&[now - 10.0], now, 2, window), None);
        let full = [now - 10.0, now - 3000.0, now - 4000.0];
        assert_eq!(
            rate_hold(&full, now, 2, window),
            Some(Duration::from_secs(600))
        );
    }
}
