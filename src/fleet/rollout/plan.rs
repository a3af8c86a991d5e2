//! The checkpoints of one rollout: one canary, then half, then all. Pure.
//!
//! Instance refresh starts at most ⌈total·p/100⌉ replacements before checkpoint p and pauses
//! there for CheckpointDelay; the last checkpoint must be 100, or the refresh ends with the rest
//! not replaced. A step here is a checkpoint and the number of replacements its gate judges.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// `canary`, `half` or `all`.
    pub name: &'static str,
    /// The refresh's checkpoint percentage.
    pub percent: u32,
    /// Replacements started by this checkpoint (cumulative).
    pub instances: u32,
}

/// Replacements the refresh starts before checkpoint `percent` of `total`.
pub fn replaced_by(total: u32, percent: u32) -> u32 {
    (u64::from(total) * u64::from(percent)).div_ceil(100).max(1) as u32
}

/// The steps for `total` instances to replace; none when there is nothing to replace. A step at
/// or below the one before is dropped (2 instances: the canary is already half; 1: it is all).
pub fn steps(total: u32) -> Vec<Step> {
    if total == 0 {
        return Vec::new();
    }
    // The largest percentage that still starts exactly one replacement (at least 1 %).
    let canary = (100 / total).max(1);
    let mut out: Vec<Step> = Vec::new();
    for (name, percent) in [("canary", canary), ("half", 50), ("all", 100)] {
        let instances = replaced_by(total, percent).min(total);
        match out.last() {
            Some(prev) if percent <= prev.percent => continue,
            Some(prev) if instances <= prev.instances => {
                // Same instances, higher percentage: keep the larger checkpoint only.
                out.pop();
            }
            _ => {}
        }
        out.push(Step {
            name,
            percent,
            instances,
        });
    }
    out
}

/// CheckpointPercentages for StartInstanceRefresh.
pub fn checkpoints(steps: &[Step]) -> Vec<u32> {
    steps.iter().map(|s| s.percent).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(total: u32) -> Vec<(&'static str, u32, u32)> {
        steps(total)
            .into_iter()
            .map(|s| (s.name, s.percent, s.instances))
            .collect()
    }

    #[test]
    fn one_canary_then_half_then_all() {
        assert_eq!(
            shape(10),
            [("canary", 10, 1), ("half", 50, 5), ("all", 100, 10)]
        );
        assert_eq!(
            shape(3),
            [("canary", 33, 1), ("half", 50, 2), ("all", 100, 3)]
        );
        assert_eq!(
            shape(7),
            [("canary", 14, 1), ("half", 50, 4), ("all", 100, 7)]
        );
    }

    #[test]
    fn small_groups_merge_steps_that_judge_the_same_instances() {
        assert!(shape(0).is_empty());
        assert_eq!(shape(1), [("canary", 100, 1)]);
        assert_eq!(shape(2), [("canary", 50, 1), ("all", 100, 2)]);
    }

    #[test]
    fn every_canary_starts_exactly_one_replacement_up_to_100_instances() {
        for total in 1..=100 {
            let s = steps(total);
            assert_eq!(
                s.last().map(|s| (s.percent, s.instances)),
                Some((100, total))
            );
            assert_eq!(s[0].instances, 1, "{total} instances: {s:?}");
            assert_eq!(replaced_by(total, s[0].percent), 1);
            let pcts = checkpoints(&s);
            assert!(pcts.windows(2).all(|w| w[0] < w[1]), "{pcts:?}");
        }
    }

    #[test]
    fn above_100_instances_the_canary_is_one_percent() {
        assert_eq!(
            steps(250)[0],
            Step {
                name: "canary",
                percent: 1,
                instances: 3
            }
        );
    }
}
