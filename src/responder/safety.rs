//! Pure decisions that keep automatic maintenance from running away:
//! cooldown and circuit breaker, computed from the job history.

use std::time::Duration;

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
    pub fn reason(self) -> &'static str {
        match self {
            Hold::Cooldown => "cooldown",
            Hold::BreakerFailures | Hold::BreakerRate => "breaker",
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

/// Decides from the latest attempts (start time, succeeded), newest first.
pub fn check(attempts: &[(f64, bool)], now: f64, limits: &Limits) -> Option<Hold> {
    if breaker_open_failures(attempts, limits) {
        return Some(Hold::BreakerFailures);
    }
    let since = now - limits.window.as_secs_f64();
    let in_window = attempts.iter().filter(|(t, _)| *t >= since).count();
    if in_window >= limits.max_runs as usize {
        return Some(Hold::BreakerRate);
    }
    match attempts.first() {
        Some((last, _)) if now - last < limits.cooldown.as_secs_f64() => Some(Hold::Cooldown),
        _ => None,
    }
}

/// Open after `failures` consecutive failed attempts; a success closes it.
/// A person closes it by running the action by hand successfully.
pub fn breaker_open_failures(attempts: &[(f64, bool)], limits: &Limits) -> bool {
    let failures = limits.failures as usize;
    attempts.len() >= failures && attempts.iter().take(failures).all(|(_, ok)| !ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        cooldown: Duration::from_secs(600),
        max_runs: 3,
        window: Duration::from_secs(3600),
        failures: 2,
    };

    #[test]
    fn cooldown_holds_until_it_has_passed() {
        let now = 10_000.0;
        assert_eq!(check(&[], now, &LIMITS), None);
        assert_eq!(
            check(&[(now - 599.0, true)], now, &LIMITS),
            Some(Hold::Cooldown)
        );
        assert_eq!(check(&[(now - 600.0, true)], now, &LIMITS), None);
    }

    #[test]
    fn consecutive_failures_open_the_breaker_and_a_success_closes_it() {
        let now = 100_000.0;
        let failed_twice = [(now - 5000.0, false), (now - 9000.0, false)];
        assert_eq!(
            check(&failed_twice, now, &LIMITS),
            Some(Hold::BreakerFailures)
        );
        let recovered = [
            (now - 4000.0, true),
            (now - 5000.0, false),
            (now - 9000.0, false),
        ];
        assert_eq!(check(&recovered, now, &LIMITS), None);
    }

    #[test]
    fn too_many_runs_in_the_window_open_the_breaker() {
        let now = 100_000.0;
        let runs = [
            (now - 700.0, true),
            (now - 1400.0, true),
            (now - 2100.0, true),
        ];
        assert_eq!(check(&runs, now, &LIMITS), Some(Hold::BreakerRate));
        let older = [
            (now - 700.0, true),
            (now - 1400.0, true),
            (now - 3700.0, true),
        ];
        assert_eq!(check(&older, now, &LIMITS), None);
    }
}
