//! Line and area charts drawn on the server as SVG with maud: no chart framework, no script,
//! and no `style` attribute (the site's CSP, `style-src 'self'`, would refuse one), only SVG
//! presentation attributes such as `stroke` and `fill`.
//!
//! A [`Chart`] holds one or more named [`Series`] of (x, y) points. [`Chart::svg`] draws them
//! with axes, a few labelled ticks, a title and a legend; the SVG carries its own text
//! alternative (`<title>` and `<desc>`, referenced by `aria-labelledby`), and
//! [`Chart::table`] gives the same figures as an HTML table for readers who prefer one.
//!
//! Any input draws: an empty chart, a single point or a flat line get a scale of their own, and
//! points that are not finite numbers are left out, so the output never holds a NaN.
//!
//! The load test (a workspace member of its own that does not depend on the shop) includes
//! this file by path, so it must stay self-contained: std and maud only.

use std::fmt::Write as _;

use maud::{Markup, html};

/// How the numbers of an axis are written at its ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TickFormat {
    /// Plain numbers, with as many decimals as the tick step needs (`12k` from ten thousand).
    Number,
    /// Seconds as a duration: `45 s`, `2:30` (minutes and seconds), `1:05:00`.
    Seconds,
    /// Unix seconds as the UTC time of day, `20:15`.
    TimeOfDay,
}

/// One axis: what it measures and how its ticks read.
#[derive(Clone, Debug)]
pub struct Axis {
    pub label: String,
    pub format: TickFormat,
}

impl Axis {
    pub fn new(label: impl Into<String>, format: TickFormat) -> Axis {
        Axis {
            label: label.into(),
            format,
        }
    }
}

/// A named line of (x, y) points, drawn in the order given.
#[derive(Clone, Debug)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    /// Shade the area between the line and the x axis (for amounts, such as a queue's length).
    pub area: bool,
}

impl Series {
    pub fn line(name: impl Into<String>, points: Vec<(f64, f64)>) -> Series {
        Series {
            name: name.into(),
            points,
            area: false,
        }
    }

    pub fn area(name: impl Into<String>, points: Vec<(f64, f64)>) -> Series {
        Series {
            area: true,
            ..Series::line(name, points)
        }
    }

    /// The points that can be drawn: both coordinates finite.
    fn drawable(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.points
            .iter()
            .copied()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
    }
}

/// A chart: a title, two axes and the series drawn on them.
#[derive(Clone, Debug)]
pub struct Chart {
    /// Prefix of the ids inside the SVG (its title and description), unique on a page that
    /// shows several charts.
    pub id: String,
    pub title: String,
    pub x: Axis,
    pub y: Axis,
    pub series: Vec<Series>,
}

/// Colours of the series in turn: distinguishable with the common colour-vision deficiencies
/// (Okabe and Ito's palette), dark enough on white.
const COLOURS: [&str; 6] = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9"];

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 260.0;
/// Room around the plot for the title and legend (top), the y ticks (left), the x ticks and the
/// x axis label (bottom).
const LEFT: f64 = 60.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 48.0;
const BOTTOM: f64 = 44.0;
/// About this many ticks per axis.
const TICKS: usize = 5;

/// The range an axis shows, with its tick step.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Scale {
    min: f64,
    max: f64,
    step: f64,
}

impl Scale {
    /// A scale over `values` with round ticks. Always a range of positive width: no values
    /// give 0 to 1, one value (or many equal ones) a unit around it. With `from_zero` the
    /// range includes 0 and ends on a tick (amounts are read against zero and a round top);
    /// without, it spans the values exactly (time runs from the first point to the last).
    fn over(values: impl Iterator<Item = f64>, from_zero: bool, format: TickFormat) -> Scale {
        let (mut lo, mut hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
        if lo > hi {
            (lo, hi) = (0.0, 1.0);
        }
        if from_zero {
            lo = lo.min(0.0);
            hi = hi.max(0.0);
        }
        if hi - lo <= f64::EPSILON * hi.abs().max(1.0) {
            if from_zero && lo == 0.0 {
                hi = lo + 1.0;
            } else {
                (lo, hi) = (lo - 1.0, hi + 1.0);
            }
        }
        let rough = (hi - lo) / TICKS as f64;
        let step = match format {
            TickFormat::Number => nice_step(rough),
            TickFormat::Seconds | TickFormat::TimeOfDay => clock_step(rough),
        };
        if from_zero {
            (lo, hi) = ((lo / step).floor() * step, (hi / step).ceil() * step);
        }
        Scale { min: lo, max: hi, step }
    }

    /// The multiples of the step from `min` to `max`, both included.
    fn ticks(&self) -> Vec<f64> {
        let first = (self.min / self.step - 1e-9).ceil() as i64;
        let last = (self.max / self.step + 1e-9).floor() as i64;
        (first..=last).map(|i| i as f64 * self.step).collect()
    }

    /// Where `v` falls between `from` (at `min`) and `to` (at `max`).
    fn place(&self, v: f64, from: f64, to: f64) -> f64 {
        from + (v - self.min) / (self.max - self.min) * (to - from)
    }
}

/// The round number (1, 2 or 5 times a power of ten) nearest above `rough`; 1 for nonsense.
fn nice_step(rough: f64) -> f64 {
    if !(rough.is_finite() && rough > 0.0) {
        return 1.0;
    }
    let power = 10f64.powf(rough.log10().floor());
    let fraction = rough / power;
    let nice = if fraction <= 1.0 {
        1.0
    } else if fraction <= 2.0 {
        2.0
    } else if fraction <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * power
}

/// A step that reads well on a clock: whole seconds, minutes or hours that divide the next
/// unit (15 s, 5 min, 2 h), then whole days.
fn clock_step(rough: f64) -> f64 {
    const STEPS: [f64; 17] = [
        1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 10_800.0, 21_600.0,
        43_200.0,
    ];
    if rough < 1.0 {
        return nice_step(rough);
    }
    STEPS
        .into_iter()
        .find(|&s| s >= rough)
        .unwrap_or_else(|| (rough / 86_400.0).ceil() * 86_400.0)
}

/// A tick's label on `scale`: its step decides the decimals (ticks 0.5 apart read `0.5`,
/// `1.0`), its extent whether durations need minutes or hours.
fn tick_label(v: f64, scale: &Scale, format: TickFormat) -> String {
    let step = scale.step;
    // -0.0 would print as "-0".
    let v = if v == 0.0 { 0.0 } else { v };
    match format {
        TickFormat::Number => {
            if v.abs() >= 1e6 && step >= 1e5 {
                format!("{}M", trim_decimals(v / 1e6, step / 1e6))
            } else if v.abs() >= 1e4 && step >= 1e3 {
                format!("{}k", trim_decimals(v / 1e3, step / 1e3))
            } else {
                trim_decimals(v, step)
            }
        }
        TickFormat::Seconds => {
            let longest = scale.min.abs().max(scale.max.abs());
            let s = v.round() as i64;
            let sign = if s < 0 { "-" } else { "" };
            let s = s.abs();
            if longest < 120.0 || step < 1.0 {
                format!("{} s", trim_decimals(v, step))
            } else if longest < 3600.0 {
                format!("{sign}{}:{:02}", s / 60, s % 60)
            } else {
                format!("{sign}{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
            }
        }
        TickFormat::TimeOfDay => {
            let s = (v.round() as i64).rem_euclid(86_400);
            if step < 60.0 {
                format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
            } else {
                format!("{:02}:{:02}", s / 3600, s / 60 % 60)
            }
        }
    }
}

/// A value between ticks, as the text alternative and the table give it: two more decimals
/// than the ticks (and none for whole numbers or seconds).
fn exact_label(v: f64, scale: &Scale, format: TickFormat) -> String {
    let finer = Scale {
        step: if v.fract() == 0.0 { 1.0 } else { scale.step / 100.0 },
        ..*scale
    };
    tick_label(v, &finer, format)
}

/// `v` with the decimals a tick step of `step` needs (none for whole steps).
fn trim_decimals(v: f64, step: f64) -> String {
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()).clamp(0.0, 6.0) as usize
    };
    format!("{v:.decimals$}")
}

/// A coordinate as written in the SVG: one decimal is finer than a pixel.
fn coord(v: f64) -> String {
    format!("{v:.1}")
}

impl Chart {
    pub fn new(id: impl Into<String>, title: impl Into<String>, x: Axis, y: Axis) -> Chart {
        Chart {
            id: id.into(),
            title: title.into(),
            x,
            y,
            series: Vec::new(),
        }
    }

    pub fn with(mut self, series: Series) -> Chart {
        self.series.push(series);
        self
    }

    fn scales(&self) -> (Scale, Scale) {
        let points = || self.series.iter().flat_map(Series::drawable);
        (
            Scale::over(points().map(|(x, _)| x), false, self.x.format),
            Scale::over(points().map(|(_, y)| y), true, self.y.format),
        )
    }

    /// A sentence per series for the text alternative: its range and its highest point.
    pub fn description(&self) -> String {
        let mut out = String::new();
        let (xs, ys) = self.scales();
        for s in &self.series {
            let points: Vec<(f64, f64)> = s.drawable().collect();
            let x = |v| exact_label(v, &xs, self.x.format);
            let y = |v| exact_label(v, &ys, self.y.format);
            match (points.first(), points.last()) {
                (Some(first), Some(last)) => {
                    let peak = points
                        .iter()
                        .copied()
                        .fold(*first, |p, q| if q.1 > p.1 { q } else { p });
                    let _ = write!(
                        out,
                        "{}: {} points from {} to {} ({}); highest {} at {}, last {}. ",
                        s.name,
                        points.len(),
                        x(first.0),
                        x(last.0),
                        self.x.label,
                        y(peak.1),
                        x(peak.0),
                        y(last.1),
                    );
                }
                _ => {
                    let _ = write!(out, "{}: no data yet. ", s.name);
                }
            }
        }
        if self.series.is_empty() {
            out.push_str("No data yet.");
        }
        out.trim_end().to_string()
    }

    /// The chart as an `<svg>` element, for a page or (with [`Chart::document`]) a file.
    pub fn svg(&self) -> Markup {
        let (xs, ys) = self.scales();
        let (left, right, top, bottom) = (LEFT, WIDTH - RIGHT, TOP, HEIGHT - BOTTOM);
        let px = |x: f64| xs.place(x, left, right);
        let py = |y: f64| ys.place(y, bottom, top);
        let title_id = format!("{}-title", self.id);
        let desc_id = format!("{}-desc", self.id);
        // Where each legend entry starts: a swatch, its name (about 6.5 px a character at this
        // size) and a gap.
        let legend_offsets: Vec<f64> = self
            .series
            .iter()
            .scan(0.0, |at, s| {
                let here = *at;
                *at += 14.0 + 6.5 * s.name.chars().count() as f64 + 18.0;
                Some(here)
            })
            .collect();
        html! {
            svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox=(format!("0 0 {WIDTH} {HEIGHT}"))
                width=(WIDTH) height=(HEIGHT) role="img" aria-labelledby=(format!("{title_id} {desc_id}"))
                font-family="system-ui, sans-serif" font-size="11" {
                title id=(title_id) { (self.title) }
                desc id=(desc_id) { (self.description()) }
                rect x="0" y="0" width=(WIDTH) height=(HEIGHT) fill="#ffffff" {}
                text x=(left) y="18" font-size="14" font-weight="bold" fill="#222222" { (self.title) }
                // Horizontal grid lines with the y ticks, vertical ticks on the x axis.
                @for v in ys.ticks() {
                    line x1=(coord(left)) x2=(coord(right)) y1=(coord(py(v))) y2=(coord(py(v)))
                        stroke="#dddddd" stroke-width="1" {}
                    text x=(coord(left - 6.0)) y=(coord(py(v) + 4.0)) text-anchor="end" fill="#444444" {
                        (tick_label(v, &ys, self.y.format))
                    }
                }
                @for v in xs.ticks() {
                    line x1=(coord(px(v))) x2=(coord(px(v))) y1=(coord(bottom)) y2=(coord(bottom + 4.0))
                        stroke="#444444" stroke-width="1" {}
                    text x=(coord(px(v))) y=(coord(bottom + 16.0)) text-anchor="middle" fill="#444444" {
                        (tick_label(v, &xs, self.x.format))
                    }
                }
                line x1=(coord(left)) x2=(coord(right)) y1=(coord(bottom)) y2=(coord(bottom))
                    stroke="#444444" stroke-width="1" {}
                line x1=(coord(left)) x2=(coord(left)) y1=(coord(top)) y2=(coord(bottom))
                    stroke="#444444" stroke-width="1" {}
                text x=(coord((left + right) / 2.0)) y=(coord(HEIGHT - 6.0)) text-anchor="middle" fill="#444444" {
                    (self.x.label)
                }
                text x="14" y=(coord((top + bottom) / 2.0)) text-anchor="middle" fill="#444444"
                    transform=(format!("rotate(-90 14 {})", coord((top + bottom) / 2.0))) {
                    (self.y.label)
                }
                @for (i, s) in self.series.iter().enumerate() {
                    @let colour = COLOURS[i % COLOURS.len()];
                    @let points: Vec<(f64, f64)> = s.drawable().map(|(x, y)| (px(x), py(y))).collect();
                    @let line = points.iter().map(|&(x, y)| format!("{},{}", coord(x), coord(y))).collect::<Vec<_>>().join(" ");
                    @if s.area && points.len() > 1 {
                        @let base = py(ys.min.max(0.0));
                        polygon fill=(colour) fill-opacity="0.18" stroke="none"
                            points=(format!("{},{} {line} {},{}", coord(points[0].0), coord(base),
                                coord(points[points.len() - 1].0), coord(base))) {}
                    }
                    polyline class="series" fill="none" stroke=(colour) stroke-width="2"
                        stroke-linejoin="round" points=(line) {}
                    // A lone point draws no line: mark it.
                    @if let [(x, y)] = points[..] {
                        circle cx=(coord(x)) cy=(coord(y)) r="3" fill=(colour) {}
                    }
                    // The legend: one row under the title, an entry per series.
                    @let lx = left + legend_offsets[i];
                    rect x=(coord(lx)) y="25" width="10" height="10" fill=(colour) {}
                    text x=(coord(lx + 14.0)) y="34" fill="#222222" { (s.name) }
                }
            }
        }
    }

    /// The SVG as a file of its own (an `.svg` next to a report).
    pub fn document(&self) -> String {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
        out.push_str(&self.svg().into_string());
        out.push('\n');
        out
    }

    /// The same figures as a table: one row per x, one column per series (empty where a
    /// series has no point at that x).
    pub fn table(&self) -> Markup {
        let mut xs: Vec<f64> = self.series.iter().flat_map(|s| s.drawable().map(|(x, _)| x)).collect();
        xs.sort_by(f64::total_cmp);
        xs.dedup();
        let (x_scale, y_scale) = self.scales();
        html! {
            table.chart-data {
                caption { (self.title) }
                thead { tr { th scope="col" { (self.x.label) } @for s in &self.series { th scope="col" { (s.name) } } } }
                tbody {
                    @for x in &xs {
                        tr {
                            th scope="row" { (exact_label(*x, &x_scale, self.x.format)) }
                            @for s in &self.series {
                                td { @if let Some((_, y)) = s.drawable().find(|(px, _)| px == x) {
                                    (exact_label(y, &y_scale, self.y.format))
                                } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A chart's SVG can go straight into a maud template.
impl maud::Render for Chart {
    fn render(&self) -> Markup {
        self.svg()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(series: Vec<Series>) -> Chart {
        let mut c = Chart::new(
            "c",
            "Queue",
            Axis::new("seconds", TickFormat::Seconds),
            Axis::new("buyers", TickFormat::Number),
        );
        c.series = series;
        c
    }

    /// The coordinates in each `points="…"` of the polylines, in order.
    fn polylines(svg: &str) -> Vec<usize> {
        svg.split("<polyline")
            .skip(1)
            .map(|p| {
                let attr = p.split("points=\"").nth(1).unwrap().split('"').next().unwrap();
                attr.split_whitespace().count()
            })
            .collect()
    }

    #[test]
    fn every_finite_point_of_every_series_is_drawn() {
        let a: Vec<(f64, f64)> = (0..50).map(|i| (i as f64, (i * i) as f64)).collect();
        let mut b: Vec<(f64, f64)> = (0..7).map(|i| (i as f64 * 3.0, 2.0)).collect();
        b.push((f64::NAN, 1.0));
        b.push((4.0, f64::INFINITY));
        let svg = chart(vec![Series::line("a", a), Series::area("b", b)])
            .svg()
            .into_string();
        assert_eq!(polylines(&svg), [50, 7]);
        assert_eq!(svg.matches("<polygon").count(), 1, "one shaded area");
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
    }

    #[test]
    fn an_empty_chart_and_a_single_point_get_a_scale_without_nan() {
        for series in [
            vec![],
            vec![Series::line("none", vec![])],
            vec![Series::area("one", vec![(5.0, 3.0)])],
            vec![Series::line("flat", vec![(0.0, 0.0), (0.0, 0.0)])],
            vec![Series::line("nan", vec![(f64::NAN, f64::NAN)])],
        ] {
            let c = chart(series);
            let (xs, ys) = c.scales();
            for s in [xs, ys] {
                assert!(
                    s.min.is_finite() && s.max.is_finite() && s.max > s.min && s.step > 0.0,
                    "{s:?}"
                );
            }
            let svg = c.svg().into_string();
            assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
            assert!(svg.contains("<title id=\"c-title\">Queue</title>"));
        }
        let one = chart(vec![Series::area("one", vec![(5.0, 3.0)])]).svg().into_string();
        assert_eq!(polylines(&one), [1]);
        assert_eq!(one.matches("<circle").count(), 1, "a lone point is marked");
    }

    #[test]
    fn amounts_start_at_zero_on_a_round_top_and_time_spans_its_points() {
        let s = Scale::over([3.0, 97.0].into_iter(), true, TickFormat::Number);
        assert_eq!((s.min, s.max, s.step), (0.0, 100.0, 20.0));
        assert_eq!(s.ticks(), [0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
        let s = Scale::over([1000.0, 1003.5].into_iter(), false, TickFormat::Number);
        assert_eq!((s.min, s.max, s.step), (1000.0, 1003.5, 1.0));
        assert_eq!(s.ticks(), [1000.0, 1001.0, 1002.0, 1003.0]);
        let s = Scale::over([0.2, 0.9].into_iter(), true, TickFormat::Number);
        assert_eq!(s.step, 0.2);
        assert_eq!(tick_label(0.4, &s, TickFormat::Number), "0.4");
        // Time ticks fall on round clock values: 30 s apart, not 50.
        let s = Scale::over([0.0, 119.0].into_iter(), false, TickFormat::Seconds);
        assert_eq!(s.ticks(), [0.0, 30.0, 60.0, 90.0]);
    }

    #[test]
    fn tick_labels_read_as_numbers_durations_and_times() {
        let scale = |min, max, step| Scale { min, max, step };
        assert_eq!(tick_label(25_000.0, &scale(0.0, 3e4, 5e3), TickFormat::Number), "25k");
        assert_eq!(tick_label(1_500.0, &scale(0.0, 2e3, 500.0), TickFormat::Number), "1500");
        assert_eq!(tick_label(-0.0, &scale(-1.0, 1.0, 1.0), TickFormat::Number), "0");
        assert_eq!(tick_label(45.0, &scale(0.0, 90.0, 15.0), TickFormat::Seconds), "45 s");
        assert_eq!(tick_label(150.0, &scale(0.0, 300.0, 30.0), TickFormat::Seconds), "2:30");
        assert_eq!(
            tick_label(3900.0, &scale(0.0, 7200.0, 600.0), TickFormat::Seconds),
            "1:05:00"
        );
        let day = 86_400.0 * 3.0;
        assert_eq!(
            tick_label(
                day + 72_900.0,
                &scale(day, day + 80_000.0, 300.0),
                TickFormat::TimeOfDay
            ),
            "20:15"
        );
    }

    #[test]
    fn labels_are_escaped() {
        let mut c = chart(vec![Series::line("<b>&</b>", vec![(0.0, 1.0), (1.0, 2.0)])]);
        c.title = "<script>alert(1)</script>".into();
        c.y.label = "\"quoted\" & <y>".into();
        let svg = c.svg().into_string();
        assert!(!svg.contains("<script>") && !svg.contains("<b>"), "{svg}");
        assert!(svg.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(svg.contains("&lt;b&gt;&amp;&lt;/b&gt;"));
        assert!(svg.contains("&quot;quoted&quot; &amp; &lt;y&gt;"));
        let table = c.table().into_string();
        assert!(
            table.contains("<caption>&lt;script&gt;") && !table.contains("<b>"),
            "{table}"
        );
    }

    #[test]
    fn the_svg_has_no_style_attribute_and_names_its_text_alternative() {
        let svg = chart(vec![Series::area("waiting", vec![(0.0, 10.0), (60.0, 40.0)])])
            .svg()
            .into_string();
        assert!(!svg.contains("style="), "{svg}");
        assert!(svg.contains("aria-labelledby=\"c-title c-desc\""));
        assert!(
            svg.contains(
                "<desc id=\"c-desc\">waiting: 2 points from 0 s to 60 s (seconds); highest 40 at 60 s, last 40.</desc>"
            ),
            "{svg}"
        );
    }

    #[test]
    fn the_table_has_a_row_per_x_and_a_column_per_series() {
        let c = chart(vec![
            Series::line("a", vec![(0.0, 1.0), (1.0, 2.0)]),
            Series::line("b", vec![(1.0, 5.0), (2.0, 6.0)]),
        ]);
        let t = c.table().into_string();
        assert_eq!(t.matches("<tr>").count(), 4, "a header and three x values: {t}");
        assert_eq!(t.matches("<td></td>").count(), 2, "each series misses one x: {t}");
    }
}
