//! Charts drawn with plotters' SVG backend into strings.
//!
//! Each function returns a complete `<svg>` element. Text is left to the
//! browser (no font files are embedded; plotters' naive layout estimates sizes).

use crate::{Curve, ModelResult, PcaMap, ReportError};
use plotters::prelude::*;
use plotters::style::colors::colormaps::ViridisRGB;

/// Series colours (colour-blind friendly, after Okabe & Ito).
const SERIES: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(120, 120, 120),
];
const ALERT_RED: RGBColor = RGBColor(200, 30, 45);
const GRID: RGBColor = RGBColor(225, 225, 225);

pub(crate) fn series_colour(i: usize) -> RGBColor {
    SERIES[i % SERIES.len()]
}

fn err(chart: &str, e: impl std::fmt::Display) -> ReportError {
    ReportError::Plot {
        chart: chart.to_string(),
        message: e.to_string(),
    }
}

/// A finite range around the data, padded so points do not sit on the frame.
fn padded_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if hi - lo < 1e-12 {
        return (lo - 1.0, hi + 1.0);
    }
    let pad = (hi - lo) * 0.06;
    (lo - pad, hi + pad)
}

/// Names on the map are cut to 40 characters (the tables have them whole).
fn short_name(s: &str) -> String {
    if s.chars().count() <= 40 {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(39).collect::<String>())
    }
}

/// Entities on the first two principal components, coloured by the rank of
/// their score (rank rather than raw score so a few extreme scores do not
/// wash every other point into one colour), labelled positives ringed in red,
/// and the highest-scoring `map.name_top` points named.
pub fn pca_map_svg(map: &PcaMap, size: (u32, u32)) -> Result<String, ReportError> {
    let chart_name = "PCA map";
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(chart_name, e))?;
        let (x0, x1) = padded_range(map.points.iter().map(|p| p.x));
        // Room on the right for the names of the outermost points.
        let x1 = x1 + (x1 - x0) * 0.12;
        let (y0, y1) = padded_range(map.points.iter().map(|p| p.y));
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(38)
            .y_label_area_size(52)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(|e| err(chart_name, e))?;
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .bold_line_style(GRID)
            .x_desc(format!(
                "PC1 ({:.0}% of variance)",
                map.explained[0] * 100.0
            ))
            .y_desc(format!(
                "PC2 ({:.0}% of variance)",
                map.explained[1] * 100.0
            ))
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 14))
            .draw()
            .map_err(|e| err(chart_name, e))?;

        // Draw in increasing score so the interesting points end up on top.
        let mut order: Vec<usize> = (0..map.points.len())
            .filter(|&i| map.points[i].x.is_finite() && map.points[i].y.is_finite())
            .collect();
        order.sort_by(|&a, &b| map.points[a].score.total_cmp(&map.points[b].score));
        let n = order.len().max(2) as f64;
        let colours: Vec<RGBColor> = (0..order.len())
            .map(|rank| ViridisRGB::get_color_normalized(rank as f64, 0.0, n - 1.0))
            .collect();
        chart
            .draw_series(order.iter().zip(&colours).map(|(&i, c)| {
                let p = &map.points[i];
                Circle::new((p.x, p.y), 4, c.mix(0.85).filled())
            }))
            .map_err(|e| err(chart_name, e))?;
        chart
            .draw_series(
                order
                    .iter()
                    .filter(|&&i| map.points[i].label == Some(true))
                    .map(|&i| {
                        Circle::new(
                            (map.points[i].x, map.points[i].y),
                            8,
                            ALERT_RED.stroke_width(2),
                        )
                    }),
            )
            .map_err(|e| err(chart_name, e))?;
        let named: Vec<usize> = order.iter().rev().take(map.name_top).copied().collect();
        chart
            .draw_series(named.iter().enumerate().map(|(k, &i)| {
                let p = &map.points[i];
                // Alternate above/below so neighbouring names overlap less.
                let dy = if k % 2 == 0 { -15 } else { 4 };
                EmptyElement::at((p.x, p.y))
                    + Circle::new((0, 0), 5, BLACK.stroke_width(1))
                    + Text::new(
                        short_name(&p.name),
                        (8, dy),
                        ("sans-serif", 12).into_font().color(&BLACK),
                    )
            }))
            .map_err(|e| err(chart_name, e))?;
        root.present().map_err(|e| err(chart_name, e))?;
    }
    Ok(out)
}

/// Score distribution of one model: bars of all rows, the labelled positives
/// (when labels exist) in red on the same bins, and the threshold as a
/// vertical line. Counts on a log axis, since alerts are a handful among
/// thousands and would not show on a linear one.
pub fn histogram_svg(
    model: &ModelResult,
    labels: Option<&[bool]>,
    size: (u32, u32),
) -> Result<String, ReportError> {
    let chart_name = format!("score histogram of {}", model.name);
    let finite: Vec<(f64, bool)> = model
        .scores
        .iter()
        .enumerate()
        .filter(|(_, s)| s.is_finite())
        .map(|(i, &s)| (s, labels.and_then(|l| l.get(i).copied()).unwrap_or(false)))
        .collect();
    let (mut lo, mut hi) = padded_range(finite.iter().map(|p| p.0).chain(model.threshold));
    if lo == hi {
        hi = lo + 1.0;
    }
    if lo > 0.0 && finite.iter().all(|p| p.0 >= 0.0) && lo < hi * 0.05 {
        lo = 0.0;
    }
    const BINS: usize = 40;
    let width = (hi - lo) / BINS as f64;
    let mut all = [0u64; BINS];
    let mut pos = [0u64; BINS];
    for &(s, l) in &finite {
        let b = (((s - lo) / width) as usize).min(BINS - 1);
        all[b] += 1;
        if l {
            pos[b] += 1;
        }
    }
    let ymax = all.iter().copied().max().unwrap_or(1).max(1) as f64;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&chart_name, e))?;
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .caption(model.name.clone(), ("sans-serif", 15))
            .x_label_area_size(34)
            .y_label_area_size(48)
            .build_cartesian_2d(lo..hi, (0.8f64..ymax * 1.6).log_scale())
            .map_err(|e| err(&chart_name, e))?;
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .bold_line_style(GRID)
            .x_desc("score")
            .y_desc("rows (log)")
            .x_labels(6)
            .y_label_formatter(&|v| format!("{v:.0}"))
            .label_style(("sans-serif", 12))
            .axis_desc_style(("sans-serif", 13))
            .draw()
            .map_err(|e| err(&chart_name, e))?;
        let bar = |counts: &[u64; BINS], colour: RGBAColor| {
            counts
                .iter()
                .enumerate()
                .filter(|(_, &c)| c > 0)
                .map(move |(b, &c)| {
                    let x0 = lo + b as f64 * width;
                    Rectangle::new([(x0, 0.8), (x0 + width * 0.92, c as f64)], colour.filled())
                })
                .collect::<Vec<_>>()
        };
        chart
            .draw_series(bar(&all, series_colour(0).mix(0.75)))
            .map_err(|e| err(&chart_name, e))?
            .label("all rows")
            .legend(|(x, y)| {
                Rectangle::new([(x, y - 5), (x + 12, y + 5)], series_colour(0).filled())
            });
        if labels.is_some() && pos.iter().any(|&c| c > 0) {
            chart
                .draw_series(bar(&pos, ALERT_RED.to_rgba()))
                .map_err(|e| err(&chart_name, e))?
                .label("labelled positive")
                .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], ALERT_RED.filled()));
        }
        if let Some(t) = model.threshold.filter(|t| t.is_finite()) {
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(t, 0.8), (t, ymax * 1.6)],
                    BLACK.stroke_width(2),
                )))
                .map_err(|e| err(&chart_name, e))?
                .label(format!("threshold {t:.3}"))
                .legend(|(x, y)| {
                    PathElement::new(vec![(x, y), (x + 14, y)], BLACK.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(GRID)
            .label_font(("sans-serif", 12))
            .draw()
            .map_err(|e| err(&chart_name, e))?;
        root.present().map_err(|e| err(&chart_name, e))?;
    }
    Ok(out)
}

fn curves_svg(
    chart_name: &str,
    models: &[&ModelResult],
    pick: impl Fn(&ModelResult) -> Option<&Curve>,
    axes: (&str, &str),
    diagonal: bool,
    size: (u32, u32),
) -> Result<String, ReportError> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(chart_name, e))?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .caption(chart_name, ("sans-serif", 15))
            .x_label_area_size(36)
            .y_label_area_size(44)
            .build_cartesian_2d(0.0f64..1.0, 0.0f64..1.02)
            .map_err(|e| err(chart_name, e))?;
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .bold_line_style(GRID)
            .x_desc(axes.0)
            .y_desc(axes.1)
            .label_style(("sans-serif", 12))
            .axis_desc_style(("sans-serif", 13))
            .draw()
            .map_err(|e| err(chart_name, e))?;
        if diagonal {
            chart
                .draw_series(LineSeries::new(
                    vec![(0.0, 0.0), (1.0, 1.0)],
                    RGBColor(170, 170, 170).stroke_width(1),
                ))
                .map_err(|e| err(chart_name, e))?
                .label("chance")
                .legend(|(x, y)| {
                    PathElement::new(vec![(x, y), (x + 14, y)], RGBColor(170, 170, 170))
                });
        }
        for (i, m) in models.iter().enumerate() {
            let Some(c) = pick(m) else { continue };
            let colour = series_colour(i);
            if let Some(b) = c.baseline.filter(|b| b.is_finite()) {
                chart
                    .draw_series(LineSeries::new(
                        vec![(0.0, b), (1.0, b)],
                        colour.mix(0.5).stroke_width(1),
                    ))
                    .map_err(|e| err(chart_name, e))?;
            }
            let pts: Vec<(f64, f64)> = c
                .points
                .iter()
                .copied()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .collect();
            chart
                .draw_series(LineSeries::new(pts, colour.stroke_width(2)))
                .map_err(|e| err(chart_name, e))?
                .label(format!("{} (AUC {:.3})", m.name, c.auc))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 14, y)], colour.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(if diagonal {
                SeriesLabelPosition::LowerRight
            } else {
                SeriesLabelPosition::UpperRight
            })
            .background_style(WHITE.mix(0.85))
            .border_style(GRID)
            .label_font(("sans-serif", 12))
            .draw()
            .map_err(|e| err(chart_name, e))?;
        root.present().map_err(|e| err(chart_name, e))?;
    }
    Ok(out)
}

/// ROC curves of several models on one chart (FPR vs TPR), chance diagonal.
pub fn roc_svg(models: &[&ModelResult], size: (u32, u32)) -> Result<String, ReportError> {
    curves_svg(
        "ROC",
        models,
        |m| m.roc.as_ref(),
        ("false-positive rate", "true-positive rate"),
        true,
        size,
    )
}

/// Precision–recall curves of several models on one chart, with each model's
/// no-skill line (the share of positives).
pub fn pr_svg(models: &[&ModelResult], size: (u32, u32)) -> Result<String, ReportError> {
    curves_svg(
        "Precision–recall",
        models,
        |m| m.pr.as_ref(),
        ("recall", "precision"),
        false,
        size,
    )
}
