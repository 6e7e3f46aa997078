//! Descriptive statistics shared by the analyses.

/// The q-quantile (0–1) of sorted values, interpolating linearly between order statistics at
/// position q·(n − 1) (numpy's and pandas' default). None for no values.
///
/// ```
/// use shoplens_models::stats::quantile;
/// assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0], 0.5), Some(2.5));
/// ```
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64))
}

/// `a / b`, or None when b is 0.
pub fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate() {
        assert_eq!(quantile(&[10.0], 0.9), Some(10.0));
        let v: Vec<f64> = (0..=10).map(|x| f64::from(x) * 10.0).collect();
        assert_eq!(quantile(&v, 0.9), Some(90.0));
        assert_eq!(quantile(&v, 0.25), Some(25.0));
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(ratio(1, 0), None);
    }
}
