//! Deterministic experiment assignment, bucket-compatible with GrowthBook's SDKs.
//!
//! A user's bucket is a hash of the experiment seed and the user id in [0, 1): version 2 (the
//! SDKs' default) is `fnv1a32(str(fnv1a32(seed + id))) % 10000 / 10000`. Strings are hashed as
//! UTF-16 code units, as the JavaScript SDK does, so ids with non-ASCII characters land in the same
//! bucket in the browser and here. Variation i covers [start_i, start_i + coverage × w_i) with
//! start_i the cumulative weight, so raising coverage keeps every assigned user in their variant.

const FNV_OFFSET: u32 = 0x811c_9dc5;
const FNV_PRIME: u32 = 0x0100_0193;

/// 32-bit FNV-1a over the UTF-16 code units of `s` (each unit xor-ed in whole, as JavaScript's
/// `charCodeAt` gives them).
pub fn fnv1a32(s: &str) -> u32 {
    fnv_continue(FNV_OFFSET, s)
}

/// Continues an FNV-1a state `h` over the UTF-16 code units of `s`.
fn fnv_continue(h: u32, s: &str) -> u32 {
    s.encode_utf16()
        .fold(h, |h, unit| (h ^ u32::from(unit)).wrapping_mul(FNV_PRIME))
}

/// FNV-1a of the decimal digits of `n` (all ASCII, so UTF-16 units equal bytes), without allocating.
fn fnv_decimal(n: u32) -> u32 {
    let mut digits = [0u8; 10];
    let mut i = digits.len();
    let mut x = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (x % 10) as u8;
        x /= 10;
        if x == 0 {
            break;
        }
    }
    digits[i..].iter().fold(FNV_OFFSET, |h, d| {
        (h ^ u32::from(*d)).wrapping_mul(FNV_PRIME)
    })
}

/// The version-2 bucket in [0, 1) from the FNV state after hashing seed + id.
fn bucket_v2(inner: u32) -> f64 {
    f64::from(fnv_decimal(inner) % 10_000) / 10_000.0
}

/// Assigns many users to one experiment: the seed's hash state and the bucket ranges are computed
/// once, and each id is hashed without allocating (millions per second).
#[derive(Debug, Clone)]
pub struct Assigner {
    seed_state: u32,
    ranges: Vec<(f64, f64)>,
}

impl Assigner {
    /// An assigner for `seed` with variation `weights` and traffic `coverage` (0–1).
    pub fn new(seed: &str, weights: &[f64], coverage: f64) -> Assigner {
        Assigner {
            seed_state: fnv1a32(seed),
            ranges: bucket_ranges(weights, coverage),
        }
    }

    /// The variation index of `id`, or `None` outside coverage.
    pub fn variant(&self, id: &str) -> Option<usize> {
        let h = bucket_v2(fnv_continue(self.seed_state, id));
        self.ranges.iter().position(|(a, b)| h >= *a && h < *b)
    }
}

/// GrowthBook hash version 2, in [0, 1).
pub fn hash_v2(seed: &str, id: &str) -> f64 {
    bucket_v2(fnv_continue(fnv1a32(seed), id))
}

/// GrowthBook hash version 1 (namespaces use it), in [0, 1).
pub fn hash_v1(seed: &str, id: &str) -> f64 {
    f64::from(fnv1a32(&format!("{id}{seed}")) % 1_000) / 1_000.0
}

/// Whether a user falls in a namespace's range [start, end): GrowthBook's `inNamespace`, the
/// version-1 hash of the user with seed `"__" + namespace`. Experiments on one surface that take
/// disjoint ranges of one namespace never share a user.
pub fn in_namespace(namespace: &str, start: f64, end: f64, id: &str) -> bool {
    let n = hash_v1(&format!("__{namespace}"), id);
    n >= start && n < end
}

/// Bucket ranges of the variations: weights are used as given (GrowthBook normalises only when
/// they do not sum to 1 within 0.01), coverage is clamped to [0, 1].
pub fn bucket_ranges(weights: &[f64], coverage: f64) -> Vec<(f64, f64)> {
    let coverage = coverage.clamp(0.0, 1.0);
    let total: f64 = weights.iter().sum();
    let equal = 1.0 / weights.len().max(1) as f64;
    let fixed: Vec<f64> = if (total - 1.0).abs() > 0.01 {
        weights.iter().map(|_| equal).collect()
    } else {
        weights.to_vec()
    };
    let mut start = 0.0;
    fixed
        .iter()
        .map(|w| {
            let r = (start, start + coverage * w);
            start += w;
            r
        })
        .collect()
}

/// The variation index a user falls in with version-2 hashing, or `None` outside coverage (for
/// one user; [`Assigner`] serves many).
pub fn choose_variant(seed: &str, id: &str, weights: &[f64], coverage: f64) -> Option<usize> {
    Assigner::new(seed, weights, coverage).variant(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vectors(name: &str) -> Vec<Vec<String>> {
        let path = format!(
            "{}/../../../shared/data/growthbook_hash/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(path).unwrap();
        let mut out = Vec::new();
        for line in text.lines().skip(1) {
            // Fields may be quoted (weights lists contain commas).
            let mut fields = Vec::new();
            let mut cur = String::new();
            let mut quoted = false;
            let mut chars = line.chars().peekable();
            while let Some(c) = chars.next() {
                match c {
                    '"' if quoted && chars.peek() == Some(&'"') => {
                        cur.push('"');
                        chars.next();
                    }
                    '"' => quoted = !quoted,
                    ',' if !quoted => fields.push(std::mem::take(&mut cur)),
                    _ => cur.push(c),
                }
            }
            fields.push(cur);
            out.push(fields);
        }
        out
    }

    #[test]
    fn hashes_match_growthbook_sdk_vectors() {
        let rows = vectors("hash.csv");
        assert_eq!(rows.len(), 5_100);
        for r in rows {
            let got = if r[2] == "1" {
                hash_v1(&r[0], &r[1])
            } else {
                hash_v2(&r[0], &r[1])
            };
            let want: f64 = r[3].parse().unwrap();
            assert!(
                (got - want).abs() < 1e-9,
                "seed {:?} value {:?} v{}: {got} != {want}",
                r[0],
                r[1],
                r[2]
            );
        }
    }

    /// A weights list as the vectors write it: `[0.5, 0.5]`.
    fn weights(text: &str) -> Vec<f64> {
        text.trim_matches(['[', ']'])
            .split(',')
            .map(|w| w.trim().parse().unwrap())
            .collect()
    }

    #[test]
    fn assignments_match_growthbook_sdk_vectors() {
        let rows = vectors("assign.csv");
        assert_eq!(rows.len(), 2_400);
        for r in rows {
            let weights = weights(&r[2]);
            let coverage: f64 = r[3].parse().unwrap();
            let want: i64 = r[4].parse().unwrap();
            let got = choose_variant(&r[0], &r[1], &weights, coverage).map_or(-1, |v| v as i64);
            assert_eq!(
                got, want,
                "seed {:?} user {:?} weights {weights:?} coverage {coverage}",
                r[0], r[1]
            );
            // The batch assigner built once per experiment gives the same answer.
            let batch = Assigner::new(&r[0], &weights, coverage)
                .variant(&r[1])
                .map_or(-1, |v| v as i64);
            assert_eq!(batch, want);
        }
    }

    #[test]
    fn namespaces_match_growthbook_sdk_vectors() {
        let rows = vectors("namespace.csv");
        assert_eq!(rows.len(), 600);
        for r in rows {
            let (start, end): (f64, f64) = (r[1].parse().unwrap(), r[2].parse().unwrap());
            let want = r[4] == "1";
            assert_eq!(in_namespace(&r[0], start, end, &r[3]), want, "{r:?}");
        }
    }

    #[test]
    fn raising_coverage_keeps_assigned_users() {
        for i in 0..2_000 {
            let id = format!("user-{i}");
            if let Some(v) = choose_variant("s", &id, &[0.2, 0.3, 0.5], 0.4) {
                assert_eq!(choose_variant("s", &id, &[0.2, 0.3, 0.5], 0.9), Some(v));
            }
        }
    }
}
