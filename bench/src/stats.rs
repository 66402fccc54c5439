//! Small statistics and formatting helpers shared by every section.

/// The median of `xs` (mean of the two middle values for an even count).
///
/// Returns `None` for an empty slice, so a tool that never produced a sample is reported
/// as missing rather than as zero.
pub fn median(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// (max - min) / median of `xs`; `None` for fewer than two samples.
pub fn spread(xs: &[f64]) -> Option<f64> {
    if xs.len() < 2 {
        return None;
    }
    let max = xs.iter().cloned().fold(f64::MIN, f64::max);
    let min = xs.iter().cloned().fold(f64::MAX, f64::min);
    Some((max - min) / median(xs)?)
}

/// A duration in the unit that keeps three significant digits readable.
pub fn fmt_secs(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 1e-3 {
        format!("{:.1} ms", s * 1e3)
    } else if s >= 1e-6 {
        format!("{:.1} µs", s * 1e6)
    } else {
        format!("{:.1} ns", s * 1e9)
    }
}

/// A ratio such as `1.42x`.
pub fn fmt_ratio(r: f64) -> String {
    if r >= 100.0 {
        format!("{r:.0}x")
    } else if r >= 10.0 {
        format!("{r:.1}x")
    } else {
        format!("{r:.2}x")
    }
}

/// Bytes as MB (10^6), the unit throughput is quoted in.
pub fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

/// Kibibytes (what `getrusage` reports on Linux) as a MiB string.
pub fn fmt_kib_as_mib(kib: u64) -> String {
    format!("{:.0} MiB", kib as f64 / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_count_is_the_middle_value() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
    }

    #[test]
    fn median_of_even_count_is_the_mean_of_the_middle_pair() {
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn median_of_nothing_is_none() {
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn spread_is_range_over_median() {
        assert_eq!(spread(&[1.0, 2.0, 4.0]), Some(1.5));
        assert_eq!(spread(&[3.0]), None);
    }

    #[test]
    fn seconds_pick_a_readable_unit() {
        assert_eq!(fmt_secs(2.5), "2.50 s");
        assert_eq!(fmt_secs(0.0125), "12.5 ms");
        assert_eq!(fmt_secs(3.0e-9), "3.0 ns");
    }
}
