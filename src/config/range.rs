//! Numbers with the range each setting allows; a value outside it is an
//! error at its position, never silently clamped.

use std::fmt::Display;
use std::ops::RangeInclusive;

use toml::Spanned;

use super::responder::Problem;

/// `value` if it lies in `range`, otherwise a problem at its position and
/// `default` (the configuration is refused anyway).
pub(super) fn ranged<T: PartialOrd + Display + Copy>(
    value: &Option<Spanned<T>>,
    key: &str,
    range: RangeInclusive<T>,
    default: T,
    problems: &mut Vec<Problem>,
) -> T {
    match value {
        None => default,
        Some(v) if range.contains(v.get_ref()) => *v.get_ref(),
        Some(v) => {
            problems.push((
                Some(v.span().start),
                format!(
                    "{key} must be between {} and {}, not {}",
                    range.start(),
                    range.end(),
                    v.get_ref()
                ),
            ));
            default
        }
    }
}
