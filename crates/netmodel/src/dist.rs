//! Distributions that per-node figures (uplink and downlink kbps, session lengths)
//! are drawn from (X5). Written in a scenario as an inline table with a `kind`:
//!
//! ```toml
//! uplink_kbps = { kind = "fixed", value = 100000 }
//! uplink_kbps = { kind = "uniform", min = 1000, max = 5000 }
//! uplink_kbps = { kind = "normal", mean = 3000, sd = 800, min = 500 }   # clamped
//! uplink_kbps = { kind = "exponential", mean = 2000, max = 50000 }
//! uplink_kbps = { kind = "discrete", values = [1000, 10000], weights = [3, 1] }
//! ```
//!
//! Every draw comes from the caller's seeded RNG, so a scenario replays exactly.

use rand::Rng;
use serde::{Deserialize, Serialize};
use thiserror::Error;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Distribution {
    /// Always `value`.
    Fixed { value: f64 },
    /// Uniform in `[min, max]`.
    Uniform { min: f64, max: f64 },
    /// Normal, clamped to `[min, max]` (`min` defaults to 0, `max` to unbounded).
    Normal {
        mean: f64,
        sd: f64,
        #[serde(default)]
        min: f64,
        #[serde(default)]
        max: Option<f64>,
    },
    /// Exponential with this mean, optionally clamped at `max`.
    Exponential {
        mean: f64,
        #[serde(default)]
        max: Option<f64>,
    },
    /// One of `values`, with `weights` (equal when omitted).
    Discrete {
        values: Vec<f64>,
        #[serde(default)]
        weights: Option<Vec<f64>>,
    },
}

#[derive(Debug, Error, PartialEq)]
pub enum DistError {
    #[error("{0} must be a finite number >= 0")]
    Negative(&'static str),
    #[error("uniform: min ({min}) exceeds max ({max})")]
    UniformOrder { min: f64, max: f64 },
    #[error("normal: min ({min}) exceeds max ({max})")]
    NormalOrder { min: f64, max: f64 },
    #[error("exponential: mean must be > 0")]
    ExponentialMean,
    #[error("discrete: values must not be empty")]
    DiscreteEmpty,
    #[error("discrete: {values} values but {weights} weights")]
    DiscreteWeights { values: usize, weights: usize },
    #[error("discrete: weights must be >= 0 and not all zero")]
    DiscreteWeightSum,
}

fn nonneg(v: f64, what: &'static str) -> Result<(), DistError> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(DistError::Negative(what))
    }
}

impl Distribution {
    pub fn fixed(value: f64) -> Self {
        Distribution::Fixed { value }
    }

    /// Checks the parameters; every value drawn is then finite and >= 0.
    pub fn validate(&self) -> Result<(), DistError> {
        match self {
            Distribution::Fixed { value } => nonneg(*value, "value"),
            Distribution::Uniform { min, max } => {
                nonneg(*min, "min")?;
                nonneg(*max, "max")?;
                if min > max {
                    return Err(DistError::UniformOrder {
                        min: *min,
                        max: *max,
                    });
                }
                Ok(())
            }
            Distribution::Normal { mean, sd, min, max } => {
                nonneg(*mean, "mean")?;
                nonneg(*sd, "sd")?;
                nonneg(*min, "min")?;
                if let Some(m) = max {
                    nonneg(*m, "max")?;
                    if min > m {
                        return Err(DistError::NormalOrder { min: *min, max: *m });
                    }
                }
                Ok(())
            }
            Distribution::Exponential { mean, max } => {
                if !(mean.is_finite() && *mean > 0.0) {
                    return Err(DistError::ExponentialMean);
                }
                if let Some(m) = max {
                    nonneg(*m, "max")?;
                }
                Ok(())
            }
            Distribution::Discrete { values, weights } => {
                if values.is_empty() {
                    return Err(DistError::DiscreteEmpty);
                }
                for v in values {
                    nonneg(*v, "values[]")?;
                }
                if let Some(w) = weights {
                    if w.len() != values.len() {
                        return Err(DistError::DiscreteWeights {
                            values: values.len(),
                            weights: w.len(),
                        });
                    }
                    if w.iter().any(|x| !x.is_finite() || *x < 0.0) || w.iter().sum::<f64>() <= 0.0
                    {
                        return Err(DistError::DiscreteWeightSum);
                    }
                }
                Ok(())
            }
        }
    }

    /// The mean of the distribution (before clamping, for normal and exponential).
    pub fn mean(&self) -> f64 {
        match self {
            Distribution::Fixed { value } => *value,
            Distribution::Uniform { min, max } => (min + max) / 2.0,
            Distribution::Normal { mean, .. } => *mean,
            Distribution::Exponential { mean, .. } => *mean,
            Distribution::Discrete { values, weights } => match weights {
                Some(w) => {
                    let total: f64 = w.iter().sum();
                    values.iter().zip(w).map(|(v, w)| v * w).sum::<f64>() / total
                }
                None => values.iter().sum::<f64>() / values.len() as f64,
            },
        }
    }

    /// One draw. Assumes [`Distribution::validate`] passed.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        match self {
            Distribution::Fixed { value } => *value,
            Distribution::Uniform { min, max } => min + (max - min) * rng.gen::<f64>(),
            Distribution::Normal { mean, sd, min, max } => {
                // Box–Muller; one of the pair is enough.
                let u1: f64 = 1.0 - rng.gen::<f64>();
                let u2: f64 = rng.gen::<f64>();
                let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
                let v = (mean + sd * z).max(*min);
                match max {
                    Some(m) => v.min(*m),
                    None => v,
                }
            }
            Distribution::Exponential { mean, max } => {
                let u: f64 = 1.0 - rng.gen::<f64>();
                let v = -mean * u.ln();
                match max {
                    Some(m) => v.min(*m),
                    None => v,
                }
            }
            Distribution::Discrete { values, weights } => match weights {
                None => values[rng.gen_range(0..values.len())],
                Some(w) => {
                    let total: f64 = w.iter().sum();
                    let mut x = rng.gen::<f64>() * total;
                    for (v, wi) in values.iter().zip(w) {
                        if x < *wi {
                            return *v;
                        }
                        x -= wi;
                    }
                    *values.last().expect("validated non-empty")
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[derive(Deserialize)]
    struct Holder {
        d: Distribution,
    }

    fn parse(s: &str) -> Result<Distribution, String> {
        toml::from_str::<Holder>(s)
            .map(|h| h.d)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn parses_every_kind_and_rejects_unknown_fields() {
        assert_eq!(
            parse("d = { kind = \"fixed\", value = 5 }").unwrap(),
            Distribution::fixed(5.0)
        );
        for s in [
            "d = { kind = \"uniform\", min = 1, max = 2 }",
            "d = { kind = \"normal\", mean = 3, sd = 1 }",
            "d = { kind = \"exponential\", mean = 3, max = 9 }",
            "d = { kind = \"discrete\", values = [1, 2], weights = [1, 3] }",
        ] {
            parse(s).unwrap().validate().unwrap();
        }
        let e = parse("d = { kind = \"fixed\", value = 5, typo = 1 }").unwrap_err();
        assert!(e.contains("typo"), "{e}");
        let e = parse("d = { kind = \"gaussian\", mean = 5 }").unwrap_err();
        assert!(e.contains("gaussian"), "{e}");
    }

    #[test]
    fn validation_names_the_problem() {
        let d = Distribution::Uniform { min: 5.0, max: 1.0 };
        assert!(d.validate().unwrap_err().to_string().contains("min"));
        let d = Distribution::Discrete {
            values: vec![1.0],
            weights: Some(vec![1.0, 2.0]),
        };
        assert!(d.validate().is_err());
        assert!(Distribution::fixed(-1.0).validate().is_err());
    }

    #[test]
    fn draws_stay_in_range_and_replay() {
        let ds = [
            Distribution::Uniform {
                min: 10.0,
                max: 20.0,
            },
            Distribution::Normal {
                mean: 100.0,
                sd: 80.0,
                min: 50.0,
                max: Some(120.0),
            },
            Distribution::Exponential {
                mean: 5.0,
                max: Some(30.0),
            },
            Distribution::Discrete {
                values: vec![1.0, 7.0],
                weights: Some(vec![0.0, 1.0]),
            },
        ];
        let mut a = ChaCha8Rng::seed_from_u64(7);
        let mut b = ChaCha8Rng::seed_from_u64(7);
        for d in &ds {
            for _ in 0..2000 {
                let x = d.sample(&mut a);
                assert_eq!(x, d.sample(&mut b));
                match d {
                    Distribution::Uniform { .. } => assert!((10.0..=20.0).contains(&x)),
                    Distribution::Normal { .. } => assert!((50.0..=120.0).contains(&x)),
                    Distribution::Exponential { .. } => assert!((0.0..=30.0).contains(&x)),
                    Distribution::Discrete { .. } => assert_eq!(x, 7.0),
                    Distribution::Fixed { .. } => {}
                }
            }
        }
        let e = Distribution::Exponential {
            mean: 5.0,
            max: None,
        };
        let m: f64 = (0..20000).map(|_| e.sample(&mut a)).sum::<f64>() / 20000.0;
        assert!((m - 5.0).abs() < 0.3, "mean {m}");
    }
}
