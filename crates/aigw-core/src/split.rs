//! Canary splits: a model's traffic shared between targets by weight.
//!
//! Without a sticky value, each worker rotates through the targets with a
//! smooth weighted round robin, so any run of requests follows the weights
//! closely (90/10 sends 9 of every 10 requests to the first target). With a
//! sticky value (the consumer's name, or a request header), the target is
//! chosen by weighted rendezvous hashing of that value: the same caller gets
//! the same target while the weights stay the same, and changing a weight
//! moves only the callers it must.

use std::cell::RefCell;

use crate::keypool::fnv1a;

/// One target of a split: the route that serves it, and its weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitTarget {
    pub route: String,
    /// The target's identity for sticky hashing (stable across route ids).
    pub key: String,
    pub weight: u32,
}

/// A compiled split with its per-worker rotation.
#[derive(Debug, Clone)]
pub struct Split {
    targets: Vec<SplitTarget>,
    total: i64,
    /// Smooth weighted round robin: each target's current weight.
    current: RefCell<Vec<i64>>,
}

impl Split {
    /// `targets` must be non-empty with positive weights (checked by the config).
    pub fn new(targets: Vec<SplitTarget>) -> Split {
        let total = targets.iter().map(|t| i64::from(t.weight)).sum();
        let current = RefCell::new(vec![0; targets.len()]);
        Split {
            targets,
            total,
            current,
        }
    }

    pub fn targets(&self) -> &[SplitTarget] {
        &self.targets
    }

    /// The route for a request: by `sticky` value when there is one, else the
    /// next in the weighted rotation.
    pub fn pick(&self, sticky: Option<&str>) -> Option<&str> {
        let index = match sticky {
            Some(value) => self.by_value(value),
            None => self.next(),
        }?;
        self.targets.get(index).map(|t| t.route.as_str())
    }

    fn next(&self) -> Option<usize> {
        let mut current = self.current.try_borrow_mut().ok()?;
        let mut best: Option<(usize, i64)> = None;
        for (c, t) in current.iter_mut().zip(&self.targets) {
            *c += i64::from(t.weight);
        }
        for (i, c) in current.iter().enumerate() {
            if best.is_none_or(|(_, b)| *c > b) {
                best = Some((i, *c));
            }
        }
        let (b, _) = best?;
        if let Some(c) = current.get_mut(b) {
            *c -= self.total;
        }
        Some(b)
    }

    fn by_value(&self, value: &str) -> Option<usize> {
        let mut best: Option<(usize, f64)> = None;
        for (i, t) in self.targets.iter().enumerate() {
            if t.weight == 0 {
                continue;
            }
            let score = rendezvous_score(value, &t.key, t.weight);
            if best.is_none_or(|(_, s)| score > s) {
                best = Some((i, score));
            }
        }
        best.map(|(i, _)| i)
    }
}

/// Weighted rendezvous score of `value` for a target (higher wins).
fn rendezvous_score(value: &str, target: &str, weight: u32) -> f64 {
    let h = mix(fnv1a(&[value.as_bytes(), b"\x00", target.as_bytes()]));
    // Uniform in (0, 1), then -w / ln(u).
    let u = ((h >> 11) as f64 + 0.5) / ((1u64 << 53) as f64);
    -f64::from(weight) / u.ln()
}

/// SplitMix64's finalizer: spreads FNV's weak high bits.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(weights: &[u32]) -> Split {
        Split::new(
            weights
                .iter()
                .enumerate()
                .map(|(i, w)| SplitTarget {
                    route: format!("m0.{i}"),
                    key: format!("p{i}/model"),
                    weight: *w,
                })
                .collect(),
        )
    }

    fn count(s: &Split, picks: impl Iterator<Item = Option<String>>) -> Vec<usize> {
        let mut n = vec![0; s.targets().len()];
        for p in picks.flatten() {
            let i = s.targets().iter().position(|t| t.route == p).unwrap();
            n[i] += 1;
        }
        n
    }

    #[test]
    fn the_rotation_follows_the_weights_exactly() {
        let s = split(&[90, 10]);
        let n = count(&s, (0..100).map(|_| s.pick(None).map(str::to_string)));
        assert_eq!(n, [90, 10]);
        // Smooth: the 10 % target is not served in a burst.
        let seq: Vec<_> = (0..10).map(|_| s.pick(None).unwrap().to_string()).collect();
        assert_eq!(seq.iter().filter(|r| *r == "m0.1").count(), 1);
        let s = split(&[1, 2, 3]);
        assert_eq!(
            count(&s, (0..600).map(|_| s.pick(None).map(str::to_string))),
            [100, 200, 300]
        );
    }

    #[test]
    fn a_sticky_value_keeps_its_target_and_many_values_follow_the_weights() {
        let s = split(&[90, 10]);
        let first = s.pick(Some("team-a")).unwrap().to_string();
        for _ in 0..20 {
            assert_eq!(s.pick(Some("team-a")).unwrap(), first);
        }
        let n = count(
            &s,
            (0..10_000).map(|i| s.pick(Some(&format!("user-{i}"))).map(str::to_string)),
        );
        // 9,000 expected; 4 standard deviations is 120.
        assert!((8_880..=9_120).contains(&n[0]), "{n:?}");
    }

    #[test]
    fn renumbered_routes_keep_their_sticky_callers() {
        let before = split(&[1, 1]);
        // The same targets under other route ids (an entry added above).
        let after = Split::new(
            before
                .targets()
                .iter()
                .map(|t| SplitTarget {
                    route: t.route.replace("m0.", "m1."),
                    ..t.clone()
                })
                .collect(),
        );
        for i in 0..200 {
            let v = format!("user-{i}");
            let (b, a) = (
                before.pick(Some(&v)).unwrap(),
                after.pick(Some(&v)).unwrap(),
            );
            assert_eq!(b.replace("m0.", "m1."), a);
        }
    }

    #[test]
    fn changing_a_weight_moves_only_the_callers_it_must() {
        let before = split(&[90, 10]);
        let after = split(&[80, 20]);
        let mut moved_wrong_way = 0;
        for i in 0..5_000 {
            let v = format!("user-{i}");
            let (b, a) = (
                before.pick(Some(&v)).unwrap(),
                after.pick(Some(&v)).unwrap(),
            );
            // Growing the second target only moves callers into it.
            if b == "m0.1" && a == "m0.0" {
                moved_wrong_way += 1;
            }
        }
        assert_eq!(moved_wrong_way, 0);
    }
}
