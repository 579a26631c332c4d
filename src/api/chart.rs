//! The funnel series as a PNG, for assistants that can show an image and for REST
//! callers that ask for one. Rendered in-process with plotters on a pixel buffer and an
//! embedded font (DejaVu Sans), so it needs no system fonts, no browser and no network.
//!
//! Three panels share the time axis because the figures differ by orders of magnitude:
//! clicks (total, unique), signups and qualified referrals, and credits granted. Each
//! panel has its own y axis, a legend, and the buckets' start dates on the x axis.

use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::core::views::{StatsBucket, StatsView};

const WIDTH: u32 = 960;
const HEIGHT: u32 = 760;
const FONT: &str = "sans-serif";

#[derive(Debug, thiserror::Error)]
#[error("chart: {0}")]
pub struct ChartError(String);

fn err(e: impl std::fmt::Display) -> ChartError {
    ChartError(e.to_string())
}

/// Registers the embedded font once per process.
fn font() -> Result<(), ChartError> {
    static DONE: OnceLock<bool> = OnceLock::new();
    let ok = *DONE.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular()).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(ChartError("the embedded font did not load".into()))
    }
}

/// A line: its legend name, its value per bucket, its colour and width (a wider line
/// drawn first stays visible under an equal one drawn after it).
type Line<'a> = (&'a str, fn(&StatsBucket) -> i64, RGBColor, u32);

/// The series of `view` (which must have one) as a PNG image.
pub fn funnel_png(view: &StatsView) -> Result<Vec<u8>, ChartError> {
    font()?;
    let series = view
        .series
        .as_deref()
        .ok_or_else(|| ChartError("no series: ask with an interval".into()))?;
    let mut pixels = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let (head, body) = root.split_vertically(44);
        let interval = view
            .interval
            .map(|i| format!("{i:?}").to_lowercase())
            .unwrap_or_default();
        let title = format!(
            "Referral funnel per {interval}, {} to {} (UTC){}",
            &view.from[..10.min(view.from.len())],
            last_day(&view.to),
            view.campaign
                .as_deref()
                .map(|c| format!(", campaign {c}"))
                .unwrap_or_default()
        );
        head.draw(&Text::new(
            title,
            (16, 12),
            (FONT, 22).into_font().color(&BLACK),
        ))
        .map_err(err)?;
        let panels = body.split_evenly((3, 1));
        let blue = RGBColor(31, 119, 180);
        let orange = RGBColor(255, 127, 14);
        let green = RGBColor(44, 160, 44);
        let purple = RGBColor(148, 103, 189);
        let red = RGBColor(214, 39, 40);
        panel(
            &panels[0],
            "Clicks",
            series,
            &[
                ("clicks", |b| b.clicks, blue, 6),
                ("unique clicks", |b| b.unique_clicks, orange, 2),
            ],
            "",
        )?;
        panel(
            &panels[1],
            "Referrals",
            series,
            &[
                ("signups", |b| b.signups, green, 6),
                ("qualified", |b| b.qualified, purple, 2),
            ],
            "",
        )?;
        panel(
            &panels[2],
            "Credits granted",
            series,
            &[("rewarded credits", |b| b.rewarded_credits, red, 2)],
            "first day of each bucket (UTC)",
        )?;
        root.present().map_err(err)?;
    }
    encode(&pixels)
}

fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    caption: &str,
    series: &[StatsBucket],
    lines: &[Line<'_>],
    x_desc: &str,
) -> Result<(), ChartError> {
    let n = series.len().max(1) as i32;
    let top = lines
        .iter()
        .flat_map(|(_, f, _, _)| series.iter().map(f))
        .max()
        .unwrap_or(0);
    // Head-room above the highest point, and a visible axis when everything is zero.
    let y_max = (top + top / 8).max(4);
    let mut chart = ChartBuilder::on(area)
        .margin_left(12)
        .margin_right(24)
        .margin_top(6)
        .margin_bottom(6)
        .caption(caption, (FONT, 17))
        .x_label_area_size(if x_desc.is_empty() { 26 } else { 44 })
        .y_label_area_size(64)
        .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0i64..y_max)
        .map_err(err)?;
    let label = |x: &f64| {
        let i = x.round();
        if (x - i).abs() > 1e-6 || i < 0.0 {
            return String::new();
        }
        series
            .get(i as usize)
            .map(|b| b.start.get(5..).unwrap_or(&b.start).to_owned())
            .unwrap_or_default()
    };
    chart
        .configure_mesh()
        .x_labels((n as usize).min(12))
        .x_label_formatter(&label)
        .y_labels(5)
        .y_label_formatter(&|v| thousands(*v))
        .x_desc(x_desc)
        .label_style((FONT, 13))
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.08))
        .draw()
        .map_err(err)?;
    for (name, value, color, width) in lines {
        let (color, width) = (*color, *width);
        let points: Vec<(f64, i64)> = series
            .iter()
            .enumerate()
            .map(|(i, b)| (i as f64, value(b)))
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(width)))
            .map_err(err)?
            .label(*name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(4))
            });
        chart
            .draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, width.max(3) + 1, color.filled())),
            )
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font((FONT, 13))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()
        .map_err(err)?;
    Ok(())
}

/// The last day a range covers: its end is exclusive (`2026-06-08T00:00:00Z` ends the
/// range through 2026-06-07).
fn last_day(end: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(end)
        .map(|t| {
            (t - chrono::Duration::seconds(1))
                .format("%Y-%m-%d")
                .to_string()
        })
        .unwrap_or_else(|_| end.to_owned())
}

/// 12345 -> "12,345"
fn thousands(v: i64) -> String {
    let digits = v.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0 { format!("-{out}") } else { out }
}

fn encode(rgb: &[u8]) -> Result<Vec<u8>, ChartError> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, WIDTH, HEIGHT);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().map_err(err)?;
        w.write_image_data(rgb).map_err(err)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn axis_numbers_group_thousands() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }
}
