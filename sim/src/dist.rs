//! Distributions of durations (seconds) sampled with the run's seeded generator.

use rand::Rng;
use rand_distr::{Distribution, Exp, LogNormal};
use serde::Deserialize;

/// A distribution of a duration in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Default, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Dist {
    /// Never happens (for patience: the caller waits forever).
    #[default]
    None,
    /// Always this many seconds.
    Fixed(f64),
    /// Exponential with this mean.
    Exponential(f64),
    /// Log-normal with this mean and standard deviation.
    Lognormal {
        /// Mean, seconds.
        mean: f64,
        /// Standard deviation, seconds.
        sd: f64,
    },
}

impl Dist {
    /// Checks the parameters; the error says what is wrong.
    pub fn check(&self) -> Result<(), String> {
        let ok = |x: f64| x.is_finite() && x >= 0.0;
        match *self {
            Dist::None => Ok(()),
            Dist::Fixed(x) | Dist::Exponential(x) if ok(x) => Ok(()),
            Dist::Lognormal { mean, sd } if ok(sd) && ok(mean) && mean > 0.0 => Ok(()),
            _ => Err("parameters must be finite numbers of seconds ≥ 0 (mean > 0)".into()),
        }
    }

    /// Mean in seconds (`None` for [`Dist::None`]).
    pub fn mean(&self) -> Option<f64> {
        match *self {
            Dist::None => None,
            Dist::Fixed(x) | Dist::Exponential(x) => Some(x),
            Dist::Lognormal { mean, .. } => Some(mean),
        }
    }

    /// One sample in seconds; `None` for [`Dist::None`].
    pub fn sample(&self, rng: &mut impl Rng) -> Option<f64> {
        match *self {
            Dist::None => None,
            Dist::Fixed(x) => Some(x),
            Dist::Exponential(mean) => Some(exponential(rng, mean)),
            // `check` keeps mean > 0 and sd ≥ 0, so the distribution always builds.
            Dist::Lognormal { mean, sd } => LogNormal::from_mean_cv(mean, sd / mean)
                .ok()
                .map(|d| d.sample(rng)),
        }
    }
}

/// Exponential sample with `mean` (0 for a mean that is not a number of seconds ≥ 0).
pub fn exponential(rng: &mut impl Rng, mean: f64) -> f64 {
    Exp::new(1.0 / mean).map_or(0.0, |d| d.sample(rng))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn moments(d: Dist) -> (f64, f64) {
        let mut rng = StdRng::seed_from_u64(7);
        let n = 200_000;
        let xs: Vec<f64> = (0..n).map(|_| d.sample(&mut rng).unwrap()).collect();
        let m = xs.iter().sum::<f64>() / n as f64;
        let v = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1) as f64;
        (m, v.sqrt())
    }

    #[test]
    fn samples_have_the_stated_moments() {
        let (m, sd) = moments(Dist::Exponential(180.0));
        assert!(
            (m - 180.0).abs() < 2.0 && (sd - 180.0).abs() < 3.0,
            "{m} {sd}"
        );
        let (m, sd) = moments(Dist::Lognormal {
            mean: 300.0,
            sd: 120.0,
        });
        assert!(
            (m - 300.0).abs() < 2.0 && (sd - 120.0).abs() < 3.0,
            "{m} {sd}"
        );
        assert_eq!(moments(Dist::Fixed(5.0)), (5.0, 0.0));
        assert_eq!(Dist::None.sample(&mut StdRng::seed_from_u64(1)), None);
    }

    #[test]
    fn bad_parameters_are_refused() {
        assert!(Dist::Exponential(-1.0).check().is_err());
        assert!(Dist::Lognormal { mean: 0.0, sd: 1.0 }.check().is_err());
        assert!(Dist::Fixed(f64::NAN).check().is_err());
        assert!(Dist::Fixed(0.0).check().is_ok());
    }
}
