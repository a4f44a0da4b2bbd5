//! Regions (V11's geography in the simulator, X5): named regions, a one-way
//! latency matrix in milliseconds between them, a jitter bound, and a loss
//! probability per region pair (one figure for every link, or a matrix).

use thiserror::Error;

/// Index of a region in [`Regions`].
pub type RegionId = u16;

#[derive(Debug, Error, PartialEq)]
pub enum RegionsError {
    #[error("at least one region is needed")]
    Empty,
    #[error("region name {0:?} appears twice")]
    Duplicate(String),
    #[error("{what} must have {n} rows of {n} values (one per region), found {rows} rows")]
    Rows {
        what: &'static str,
        n: usize,
        rows: usize,
    },
    #[error("{what} row {row} has {len} values, expected {n}")]
    Row {
        what: &'static str,
        row: usize,
        len: usize,
        n: usize,
    },
    #[error("{what}[{row}][{col}] = {value} is out of range ({range})")]
    Value {
        what: &'static str,
        row: usize,
        col: usize,
        value: f64,
        range: &'static str,
    },
    #[error("{0}")]
    Other(String),
}

#[derive(Clone, Debug)]
pub struct Regions {
    names: Vec<String>,
    /// One-way latency in µs, row = sender's region.
    latency_us: Vec<u64>,
    /// Loss probability per attempt, row = sender's region.
    loss: Vec<f64>,
    jitter_us: u64,
}

fn check_matrix(
    what: &'static str,
    m: &[Vec<f64>],
    n: usize,
    max: f64,
    range: &'static str,
) -> Result<(), RegionsError> {
    if m.len() != n {
        return Err(RegionsError::Rows {
            what,
            n,
            rows: m.len(),
        });
    }
    for (row, r) in m.iter().enumerate() {
        if r.len() != n {
            return Err(RegionsError::Row {
                what,
                row,
                len: r.len(),
                n,
            });
        }
        for (col, v) in r.iter().enumerate() {
            if !(v.is_finite() && *v >= 0.0 && *v <= max) {
                return Err(RegionsError::Value {
                    what,
                    row,
                    col,
                    value: *v,
                    range,
                });
            }
        }
    }
    Ok(())
}

impl Regions {
    /// `latency_ms[i][j]`: one-way latency from region i to region j. `loss` is the
    /// loss probability of every link unless `loss_matrix` gives one per pair.
    pub fn new(
        names: Vec<String>,
        latency_ms: &[Vec<f64>],
        jitter_ms: f64,
        loss: f64,
        loss_matrix: Option<&[Vec<f64>]>,
    ) -> Result<Self, RegionsError> {
        let n = names.len();
        if n == 0 {
            return Err(RegionsError::Empty);
        }
        for (i, a) in names.iter().enumerate() {
            if names[..i].contains(a) {
                return Err(RegionsError::Duplicate(a.clone()));
            }
        }
        check_matrix(
            "latency.matrix_ms",
            latency_ms,
            n,
            600_000.0,
            "0..=600000 ms",
        )?;
        if !(jitter_ms.is_finite() && (0.0..=60_000.0).contains(&jitter_ms)) {
            return Err(RegionsError::Other(format!(
                "latency.jitter_ms = {jitter_ms} is out of range (0..=60000)"
            )));
        }
        if !(loss.is_finite() && (0.0..1.0).contains(&loss)) {
            return Err(RegionsError::Other(format!(
                "network.loss = {loss} is out of range (0 <= loss < 1)"
            )));
        }
        let loss = match loss_matrix {
            Some(m) => {
                check_matrix("network.loss_matrix", m, n, 0.99, "0..=0.99")?;
                m.iter().flatten().copied().collect()
            }
            None => vec![loss; n * n],
        };
        Ok(Regions {
            latency_us: latency_ms
                .iter()
                .flatten()
                .map(|ms| (ms * 1000.0).round() as u64)
                .collect(),
            loss,
            jitter_us: (jitter_ms * 1000.0).round() as u64,
            names,
        })
    }

    /// One region, zero latency, no jitter, no loss (for tests).
    pub fn single(name: &str) -> Self {
        Regions::new(vec![name.to_string()], &[vec![0.0]], 0.0, 0.0, None)
            .expect("a single region is valid")
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn name(&self, r: RegionId) -> &str {
        &self.names[r as usize]
    }

    pub fn id(&self, name: &str) -> Option<RegionId> {
        self.names
            .iter()
            .position(|n| n == name)
            .map(|i| i as RegionId)
    }

    pub fn latency_us(&self, from: RegionId, to: RegionId) -> u64 {
        self.latency_us[from as usize * self.names.len() + to as usize]
    }

    pub fn loss(&self, from: RegionId, to: RegionId) -> f64 {
        self.loss[from as usize * self.names.len() + to as usize]
    }

    pub fn jitter_us(&self) -> u64 {
        self.jitter_us
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_lookups_and_errors() {
        let r = Regions::new(
            vec!["eu".into(), "us".into()],
            &[vec![5.0, 40.0], vec![41.0, 6.0]],
            2.0,
            0.01,
            None,
        )
        .unwrap();
        assert_eq!(r.latency_us(0, 1), 40_000);
        assert_eq!(r.latency_us(1, 0), 41_000);
        assert_eq!(r.id("us"), Some(1));
        assert_eq!(r.loss(1, 1), 0.01);
        assert_eq!(r.jitter_us(), 2000);

        let e = Regions::new(vec!["a".into(), "b".into()], &[vec![1.0]], 0.0, 0.0, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("latency.matrix_ms"), "{e}");
        let e = Regions::new(vec!["a".into()], &[vec![-1.0]], 0.0, 0.0, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("[0][0]"), "{e}");
        assert!(Regions::new(vec!["a".into(), "a".into()], &[], 0.0, 0.0, None).is_err());
        assert!(Regions::new(vec!["a".into()], &[vec![1.0]], 0.0, 1.0, None).is_err());
    }
}
