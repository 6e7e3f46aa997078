//! BG/NBD and Gamma-Gamma on the CDNOW sample against Fader, Hardie & Lee's published estimates.
//! The summary is built here from the raw file by hand (daily granularity, weeks, calibration
//! ending 1997-09-30 inclusive), independently of the engine's SQL.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::collections::BTreeMap;
use std::path::PathBuf;

use shoplens_models::clv::{Rft, fit_bgnbd, fit_gamma_gamma};

/// Day number of a YYYYMMDD date (days since 1970-01-01, proleptic Gregorian).
fn day(d: u32) -> i64 {
    let (y, m, dd) = (
        i64::from(d / 10000),
        i64::from(d / 100 % 100),
        i64::from(d % 100),
    );
    let (y, m) = if m <= 2 { (y - 1, m + 12) } else { (y, m) };
    365 * y + y / 4 - y / 100 + y / 400 + (153 * (m - 3) + 2) / 5 + dd - 719_469
}

fn summaries() -> (Vec<Rft>, Vec<(u32, f64)>) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/cdnow/CDNOW_sample.txt");
    let text = std::fs::read_to_string(path).unwrap();
    let end = day(19970930);
    // customer → day → dollars
    let mut by: BTreeMap<String, BTreeMap<i64, f64>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let d = day(f[2].parse().unwrap());
        *by.entry(f[0].to_string())
            .or_default()
            .entry(d)
            .or_default() += f[4].parse::<f64>().unwrap();
    }
    let mut rft = Vec::new();
    let mut gg = Vec::new();
    for days in by.values() {
        let cal: Vec<(i64, f64)> = days
            .iter()
            .filter(|(d, _)| **d <= end)
            .map(|(d, v)| (*d, *v))
            .collect();
        let first = cal[0].0;
        let x = (cal.len() - 1) as u32;
        let last = cal[cal.len() - 1].0;
        rft.push(Rft::new(
            x,
            (last - first) as f64 / 7.0,
            (end - first) as f64 / 7.0,
        ));
        if x > 0 {
            gg.push((x, cal[1..].iter().map(|c| c.1).sum::<f64>() / f64::from(x)));
        }
    }
    (rft, gg)
}

#[test]
fn bgnbd_and_gamma_gamma_reproduce_the_published_fits() {
    let (rft, gg) = summaries();
    assert_eq!(rft.len(), 2357);
    let f = fit_bgnbd(&rft).unwrap();
    let p = f.params;
    assert!((p.r - 0.243).abs() < 5e-4, "r {}", p.r);
    assert!((p.alpha - 4.414).abs() < 5e-4, "alpha {}", p.alpha);
    assert!((p.a - 0.793).abs() < 5e-4, "a {}", p.a);
    assert!((p.b - 2.426).abs() < 5e-4, "b {}", p.b);
    // FHL 2005 report LL = −9582.4.
    assert!(
        (f.log_likelihood - -9582.4).abs() < 0.05,
        "ll {}",
        f.log_likelihood
    );
    assert_eq!(gg.len(), 946);
    let g = fit_gamma_gamma(&gg).unwrap();
    assert!((g.params.p - 6.25).abs() < 5e-3, "p {}", g.params.p);
    assert!((g.params.q - 3.74).abs() < 5e-3, "q {}", g.params.q);
    assert!((g.params.v - 15.44).abs() < 5e-3, "v {}", g.params.v);
}
