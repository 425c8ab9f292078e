//! Probability calibration on held-out scores: Platt scaling (a logistic fit
//! of the label on the raw margin) or isotonic regression (pool-adjacent-
//! violators, a monotone step function, interpolated linearly between the
//! fitted blocks). Either way the ranking is kept (isotonic may tie scores),
//! so ROC-AUC is unchanged while log-loss and the meaning of "0.9" improve.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum CalibrationMethod {
    #[default]
    Platt,
    Isotonic,
    None,
}

impl std::str::FromStr for CalibrationMethod {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "platt" => Ok(Self::Platt),
            "isotonic" => Ok(Self::Isotonic),
            "none" => Ok(Self::None),
            o => Err(format!("unknown calibration `{o}` (platt, isotonic, none)")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "lowercase")]
pub enum Calibrator {
    /// p = σ(a·s + b) for margin s.
    Platt { a: f64, b: f64 },
    /// Piecewise-linear through (x, y) knots, x increasing; flat outside.
    Isotonic { x: Vec<f64>, y: Vec<f64> },
    /// p = σ(s) (margin) — the uncalibrated model output.
    Identity,
}

pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// Log-odds of a probability, clipped away from 0 and 1.
pub fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-6, 1.0 - 1e-6);
    (p / (1.0 - p)).ln()
}

impl Calibrator {
    /// Fit on margins `s` and labels `y` ∈ {0,1}. Too few rows of either
    /// class (under 5) keeps the identity: a fit on that would be noise.
    pub fn fit(method: CalibrationMethod, s: &[f64], y: &[f64]) -> Calibrator {
        let npos = y.iter().filter(|&&v| v > 0.5).count();
        let nneg = y.len() - npos;
        if npos < 5 || nneg < 5 {
            return Calibrator::Identity;
        }
        match method {
            CalibrationMethod::None => Calibrator::Identity,
            CalibrationMethod::Platt => fit_platt(s, y, npos, nneg),
            CalibrationMethod::Isotonic => fit_isotonic(s, y),
        }
    }

    pub fn apply(&self, s: f64) -> f64 {
        match self {
            Calibrator::Identity => sigmoid(s),
            Calibrator::Platt { a, b } => sigmoid(a * s + b),
            Calibrator::Isotonic { x, y } => {
                if x.is_empty() || s.is_nan() {
                    return sigmoid(s);
                }
                let k = x.partition_point(|&v| v < s);
                if k == 0 {
                    y[0]
                } else if k >= x.len() {
                    y[y.len() - 1]
                } else {
                    let (x0, x1, y0, y1) = (x[k - 1], x[k], y[k - 1], y[k]);
                    if x1 > x0 {
                        y0 + (y1 - y0) * (s - x0) / (x1 - x0)
                    } else {
                        y1
                    }
                }
            }
        }
    }
}

/// Platt (1999) with his smoothed targets, fitted by Newton's method with a
/// backtracking line search (a confident model's margins sit far out on the
/// sigmoid, where plain Newton steps overshoot).
fn fit_platt(s: &[f64], y: &[f64], npos: usize, nneg: usize) -> Calibrator {
    let hi = (npos as f64 + 1.0) / (npos as f64 + 2.0);
    let lo = 1.0 / (nneg as f64 + 2.0);
    let t: Vec<f64> = y.iter().map(|&v| if v > 0.5 { hi } else { lo }).collect();
    let loss = |a: f64, b: f64| -> f64 {
        s.iter()
            .zip(&t)
            .map(|(&si, &ti)| {
                // log(1 + e^z) - t·z, computed stably.
                let z = a * si + b;
                let sp = if z > 0.0 {
                    z + (-z).exp().ln_1p()
                } else {
                    z.exp().ln_1p()
                };
                sp - ti * z
            })
            .sum()
    };
    let (mut a, mut b) = (1.0, 0.0);
    let mut cur = loss(a, b);
    for _ in 0..100 {
        let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 1e-12, 0.0, 1e-12);
        for (&si, &ti) in s.iter().zip(&t) {
            let p = sigmoid(a * si + b);
            let d = p - ti;
            let w = p * (1.0 - p);
            ga += d * si;
            gb += d;
            haa += w * si * si;
            hab += w * si;
            hbb += w;
        }
        let det = haa * hbb - hab * hab;
        if det.abs() < 1e-300 {
            break;
        }
        let da = (hbb * ga - hab * gb) / det;
        let db = (haa * gb - hab * ga) / det;
        let mut step = 1.0;
        let mut improved = false;
        for _ in 0..40 {
            let (na, nb) = (a - step * da, b - step * db);
            let l = loss(na, nb);
            if l.is_finite() && l <= cur {
                (a, b, cur) = (na, nb, l);
                improved = true;
                break;
            }
            step *= 0.5;
        }
        if !improved || (step * (da.abs() + db.abs())) < 1e-10 {
            break;
        }
    }
    if a.is_finite() && b.is_finite() {
        Calibrator::Platt { a, b }
    } else {
        Calibrator::Identity
    }
}

fn fit_isotonic(s: &[f64], y: &[f64]) -> Calibrator {
    let mut pts: Vec<(f64, f64)> = s
        .iter()
        .copied()
        .zip(y.iter().copied())
        .filter(|(a, _)| !a.is_nan())
        .collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Blocks of (sum y, count, min x, max x), merged while they violate monotonicity.
    let mut blocks: Vec<(f64, f64, f64, f64)> = Vec::new();
    for (x, v) in pts {
        if let Some(last) = blocks.last_mut() {
            if last.3 == x {
                last.0 += v;
                last.1 += 1.0;
                continue;
            }
        }
        blocks.push((v, 1.0, x, x));
        while blocks.len() >= 2 {
            let n = blocks.len();
            let (a, b) = (blocks[n - 2], blocks[n - 1]);
            if a.0 / a.1 >= b.0 / b.1 {
                blocks[n - 2] = (a.0 + b.0, a.1 + b.1, a.2, b.3);
                blocks.pop();
            } else {
                break;
            }
        }
    }
    let mut xs = Vec::new();
    let mut ys = Vec::new();
    for (sy, n, lo, hi) in blocks {
        // Shrink the block mean towards ½ slightly so no held-out score maps to exactly 0 or 1.
        let m = (sy + 0.5) / (n + 1.0);
        xs.push(lo);
        ys.push(m);
        if hi > lo {
            xs.push(hi);
            ys.push(m);
        }
    }
    Calibrator::Isotonic { x: xs, y: ys }
}

/// Mean log-loss of probabilities `p` for labels `y`.
pub fn log_loss(p: &[f64], y: &[f64]) -> f64 {
    let n = p.len().max(1) as f64;
    p.iter()
        .zip(y)
        .map(|(&pi, &yi)| {
            let pi = pi.clamp(1e-12, 1.0 - 1e-12);
            -(yi * pi.ln() + (1.0 - yi) * (1.0 - pi).ln())
        })
        .sum::<f64>()
        / n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platt_recovers_a_known_slope() {
        // True p = σ(2s - 1); a miscalibrated score s is given.
        let mut s = Vec::new();
        let mut y = Vec::new();
        for i in 0..4000 {
            let si = -3.0 + 6.0 * (i as f64) / 4000.0;
            let p = sigmoid(2.0 * si - 1.0);
            // Deterministic "sampling": label 1 for the first p-share of each 100-block.
            let frac = ((i * 37) % 100) as f64 / 100.0;
            s.push(si);
            y.push(if frac < p { 1.0 } else { 0.0 });
        }
        match Calibrator::fit(CalibrationMethod::Platt, &s, &y) {
            Calibrator::Platt { a, b } => {
                assert!((a - 2.0).abs() < 0.3, "a={a}");
                assert!((b + 1.0).abs() < 0.3, "b={b}");
            }
            c => panic!("{c:?}"),
        }
    }

    #[test]
    fn isotonic_is_monotone_and_fits_steps() {
        let s: Vec<f64> = (0..100).map(|i| i as f64).collect();
        let y: Vec<f64> = (0..100).map(|i| if i >= 50 { 1.0 } else { 0.0 }).collect();
        let c = Calibrator::fit(CalibrationMethod::Isotonic, &s, &y);
        let ps: Vec<f64> = s.iter().map(|&v| c.apply(v)).collect();
        assert!(ps.windows(2).all(|w| w[1] >= w[0]));
        assert!(ps[10] < 0.05 && ps[90] > 0.95, "{} {}", ps[10], ps[90]);
    }
}
