//! Timeline plots (X5): `timeline.png`, four panels over virtual time — viewers
//! (served / starving), active relays per tier against the lower bound, continuity,
//! origin upload. Text needs a font: DejaVu Sans is loaded at run time when present;
//! without it the plot is drawn without text and a note says so. A plot never
//! fails a run: any drawing error becomes a note.

use crate::sample::Row;
use crate::world::Simulation;
use plotters::prelude::*;
use std::path::Path;
use std::sync::OnceLock;

const FONT_PATHS: [&str; 2] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

/// Registers a font once per process; whether text can be drawn.
fn fonts() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(|| {
        for p in FONT_PATHS {
            if let Ok(bytes) = std::fs::read(p) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return true;
                }
            }
        }
        false
    })
}

/// Draws the plots into `dir`; a note when something was left out or failed.
pub(crate) fn draw(sim: &Simulation, dir: &Path) -> Option<String> {
    let tiers: Vec<u8> = sim.tier_caps.keys().copied().collect();
    let text = fonts();
    let path = dir.join("timeline.png");
    match draw_timeline(&path, &sim.metrics.timeline, &tiers, &sim.sc.name, text) {
        Ok(()) if text => None,
        Ok(()) => Some(format!(
            "no font found ({}): timeline.png has no text",
            FONT_PATHS.join(" or ")
        )),
        Err(e) => Some(format!("timeline.png not drawn: {e}")),
    }
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

struct Series {
    name: String,
    color: RGBColor,
    points: Vec<(f64, f64)>,
}

fn series(name: impl Into<String>, color: RGBColor, points: Vec<(f64, f64)>) -> Series {
    Series {
        name: name.into(),
        color,
        points,
    }
}

const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

pub(crate) fn draw_timeline(
    path: &Path,
    rows: &[Row],
    tiers: &[u8],
    title: &str,
    text: bool,
) -> DrawResult {
    let root = BitMapBackend::new(path, (1200, 1200)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = if text {
        root.titled(title, ("sans-serif", 24))?
    } else {
        root
    };
    let panels = root.split_evenly((4, 1));
    let t = |r: &Row| r.t_s as f64;
    let pts = |f: &dyn Fn(&Row) -> f64| rows.iter().map(|r| (t(r), f(r))).collect::<Vec<_>>();
    let viewers = vec![
        series("watching", PALETTE[0], pts(&|r| r.viewers as f64)),
        series("served", PALETTE[2], pts(&|r| r.served as f64)),
        series("joining", PALETTE[1], pts(&|r| r.joining as f64)),
        series("starving", PALETTE[3], pts(&|r| r.starving as f64)),
    ];
    let mut relays = vec![
        series(
            "active relays",
            PALETTE[0],
            pts(&|r| r.active_relays as f64),
        ),
        series(
            "lower bound",
            RGBColor(0, 0, 0),
            pts(&|r| r.lower_bound as f64),
        ),
    ];
    for (i, tier) in tiers.iter().enumerate() {
        relays.push(series(
            format!("tier {tier}"),
            PALETTE[(i + 1) % PALETTE.len()],
            pts(&|r: &Row| r.relays_per_tier.get(i).copied().unwrap_or(0) as f64),
        ));
    }
    let continuity = vec![series("continuity", PALETTE[2], pts(&|r| r.continuity))];
    let upload = vec![series(
        "origin upload (Mbit/s)",
        PALETTE[1],
        pts(&|r| r.origin_upload_bps / 1e6),
    )];
    panel(&panels[0], "viewers", &viewers, text)?;
    panel(&panels[1], "active relays", &relays, text)?;
    panel(&panels[2], "continuity", &continuity, text)?;
    panel(&panels[3], "origin upload, Mbit/s", &upload, text)?;
    root.present()?;
    Ok(())
}

fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    y_desc: &str,
    lines: &[Series],
    text: bool,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let x_max = lines
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .fold(1.0f64, f64::max);
    let y_max = lines
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(0.0f64, f64::max)
        .max(1e-9)
        * 1.08;
    let mut b = ChartBuilder::on(area);
    b.margin(10);
    if text {
        b.x_label_area_size(30).y_label_area_size(70);
    }
    let mut chart = b.build_cartesian_2d(0f64..x_max, 0f64..y_max)?;
    if text {
        chart
            .configure_mesh()
            .x_desc("virtual time (s)")
            .y_desc(y_desc)
            .draw()?;
    } else {
        chart
            .configure_mesh()
            .x_labels(0)
            .y_labels(0)
            .disable_axes()
            .draw()?;
    }
    for s in lines {
        let color = s.color;
        let drawn = chart.draw_series(LineSeries::new(
            s.points.iter().copied(),
            color.stroke_width(2),
        ))?;
        if text {
            drawn
                .label(s.name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        }
    }
    if text {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .draw()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<Row> {
        (0..30)
            .map(|t| Row {
                t_s: t,
                viewers: t * 10,
                served: t * 9,
                joining: 0,
                starving: t,
                relays_per_tier: vec![1, (t / 5) as u32],
                active_relays: 1 + (t / 5) as u32,
                lower_bound: 1 + (t / 6) as u32,
                continuity: 0.99,
                origin_upload_bps: 2e6,
            })
            .collect()
    }

    #[test]
    fn draws_with_and_without_text() {
        let dir = std::env::temp_dir().join(format!("tiercast-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("no-text.png");
        draw_timeline(&p, &rows(), &[1, 2], "t", false).unwrap();
        assert!(std::fs::metadata(&p).unwrap().len() > 1000);
        if fonts() {
            let p = dir.join("text.png");
            draw_timeline(&p, &rows(), &[1, 2], "t", true).unwrap();
            assert!(std::fs::metadata(&p).unwrap().len() > 1000);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
