//! Charts as inline SVG: drawn on the server, so a page needs no script, prints as it shows, and
//! the standalone report opens offline. Every mark carries a `<title>` with its exact figure.

use std::fmt::Write as _;

use super::html::esc;

/// Okabe–Ito: distinguishable with the common colour-vision deficiencies, and in print.
pub(crate) const PALETTE: &[&str] = &[
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000",
];

pub(crate) fn colour(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

fn open(w: f64, h: f64, label: &str) -> String {
    format!(
        r#"<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg">"#,
        esc(label)
    )
}

/// A value on a 0–1 scale as a blue of that strength (white = 0).
fn shade(x: f64) -> String {
    let x = x.clamp(0.0, 1.0);
    let (r, g, b) = (
        255.0 - x * (255.0 - 8.0),
        255.0 - x * (255.0 - 81.0),
        255.0 - x * (255.0 - 156.0),
    );
    format!("rgb({:.0},{:.0},{:.0})", r, g, b)
}

/// "Nice" axis ticks covering [lo, hi].
fn ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    if hi <= lo || !lo.is_finite() || !hi.is_finite() {
        return vec![lo];
    }
    let raw = (hi - lo) / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).floor() as i64;
    (first..first + 50)
        .map(|k| k as f64 * step)
        // The last tick is the first at or above `hi`, so the axis covers every value.
        .take_while(|t| *t < hi + step * (1.0 - 1e-9))
        .collect()
}

/// One row of horizontal bars.
pub(crate) struct Bar {
    pub(crate) label: String,
    pub(crate) value: f64,
    /// Shown after the bar (the formatted value and any note).
    pub(crate) text: String,
    /// Shown under the row in a muted colour (e.g. the drop-off to the next step).
    pub(crate) note: Option<String>,
}

/// Horizontal bars scaled to the largest value (funnels, segments, rankings).
pub(crate) fn hbars(title: &str, bars: &[Bar]) -> String {
    let row = 34.0;
    let note_h = 16.0;
    let label_w = 230.0;
    let width = 760.0;
    let bar_w = 340.0;
    let h: f64 = bars
        .iter()
        .map(|b| row + if b.note.is_some() { note_h } else { 0.0 })
        .sum::<f64>()
        + 8.0;
    // Negative values (a loss-making campaign) extend left of a zero line.
    let max = bars.iter().map(|b| b.value).fold(0.0_f64, f64::max);
    let min = bars.iter().map(|b| b.value).fold(0.0_f64, f64::min);
    let scale = if max > min { bar_w / (max - min) } else { 0.0 };
    let zero = label_w + -min * scale;
    let mut s = open(width, h, title);
    let mut y = 4.0;
    for (i, b) in bars.iter().enumerate() {
        let w = (b.value.abs() * scale).max(1.0);
        let (bx, colour_i) = if b.value < 0.0 {
            (zero - w, 3)
        } else {
            (zero, if i == 0 { 0 } else { 5 })
        };
        let _ = write!(
            s,
            r#"<g><title>{t}: {v}</title><text x="{lx}" y="{ty}" text-anchor="end" class="lbl">{l}</text><rect x="{bx:.1}" y="{y}" width="{w:.1}" height="24" rx="2" fill="{c}"/><text x="{vx:.1}" y="{ty}" class="val">{v}</text></g>"#,
            t = esc(&b.label),
            l = esc(&short(&b.label, 30)),
            v = esc(&b.text),
            lx = label_w - 8.0,
            ty = y + 17.0,
            c = colour(colour_i),
            vx = zero.max(bx + w) + 6.0,
        );
        y += row;
        if let Some(n) = &b.note {
            let _ = write!(
                s,
                r#"<text x="{x}" y="{ty}" class="note">{n}</text>"#,
                x = label_w + 4.0,
                ty = y + 6.0,
                n = esc(n)
            );
            y += note_h;
        }
    }
    if min < 0.0 {
        let _ = write!(
            s,
            r#"<line x1="{zero:.1}" x2="{zero:.1}" y1="2" y2="{b:.1}" class="zero"/>"#,
            b = h - 4.0
        );
    }
    s.push_str("</svg>");
    s
}

/// A label cut to `n` characters with an ellipsis (the full text is in the mark's title).
fn short(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

/// A heatmap: rows × columns of values in 0..=max, each cell titled; `show` prints the cell's
/// text inside it (cohort retention), otherwise colour only (hour × weekday).
pub(crate) fn heatmap(
    title: &str,
    rows: &[String],
    cols: &[String],
    cells: &[Vec<Option<(f64, String)>>],
    show: bool,
) -> String {
    let label_w = if show { 140.0 } else { 96.0 };
    let cw = if show { 52.0 } else { 26.0 };
    let ch = if show { 24.0 } else { 20.0 };
    let width = label_w + cw * cols.len() as f64 + 8.0;
    let h = 22.0 + ch * rows.len() as f64 + 4.0;
    let max = cells
        .iter()
        .flatten()
        .flatten()
        .map(|c| c.0)
        .fold(0.0_f64, f64::max);
    let mut s = open(width, h, title);
    for (j, c) in cols.iter().enumerate() {
        let _ = write!(
            s,
            r#"<text x="{x:.1}" y="14" text-anchor="middle" class="axis">{c}</text>"#,
            x = label_w + cw * j as f64 + cw / 2.0,
            c = esc(c)
        );
    }
    for (i, r) in rows.iter().enumerate() {
        let y = 22.0 + ch * i as f64;
        let _ = write!(
            s,
            r#"<text x="{x}" y="{ty:.1}" text-anchor="end" class="axis">{r}</text>"#,
            x = label_w - 6.0,
            ty = y + ch / 2.0 + 4.0,
            r = esc(r)
        );
        for (j, cell) in cells
            .get(i)
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .enumerate()
        {
            let Some((v, text)) = cell else { continue };
            let x = label_w + cw * j as f64;
            let f = if max > 0.0 { v / max } else { 0.0 };
            let _ = write!(
                s,
                r#"<g><title>{r} · {c}: {t}</title><rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{hh:.1}" fill="{fill}"/>"#,
                r = esc(r),
                c = esc(cols.get(j).map_or("", String::as_str)),
                t = esc(text),
                w = cw - 1.0,
                hh = ch - 1.0,
                fill = shade(f),
            );
            if show {
                let _ = write!(
                    s,
                    r#"<text x="{tx:.1}" y="{ty:.1}" text-anchor="middle" class="cell" fill="{fg}">{t}</text>"#,
                    tx = x + cw / 2.0,
                    ty = y + ch / 2.0 + 4.0,
                    fg = if f > 0.55 { "#fff" } else { "#222" },
                    t = esc(text)
                );
            }
            s.push_str("</g>");
        }
    }
    s.push_str("</svg>");
    s
}

/// Plot frame shared by line and scatter charts: maps data to the drawing area and draws axes.
struct Frame {
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
    left: f64,
    top: f64,
    w: f64,
    h: f64,
}

impl Frame {
    fn x(&self, v: f64) -> f64 {
        let span = if self.x1 > self.x0 {
            self.x1 - self.x0
        } else {
            1.0
        };
        self.left + (v - self.x0) / span * self.w
    }
    fn y(&self, v: f64) -> f64 {
        let span = if self.y1 > self.y0 {
            self.y1 - self.y0
        } else {
            1.0
        };
        self.top + self.h - (v - self.y0) / span * self.h
    }
    fn axes(
        &self,
        s: &mut String,
        fx: &dyn Fn(f64) -> String,
        fy: &dyn Fn(f64) -> String,
        x_title: &str,
        y_title: &str,
    ) {
        self.y_grid(s, fy);
        for t in ticks(self.x0, self.x1, 6) {
            if t > self.x1 + (self.x1 - self.x0).abs() * 1e-9 {
                continue;
            }
            let x = self.x(t);
            let _ = write!(
                s,
                r#"<text x="{x:.1}" y="{ty:.1}" text-anchor="middle" class="axis">{v}</text>"#,
                ty = self.top + self.h + 16.0,
                v = esc(&fx(t))
            );
        }
        let _ = write!(
            s,
            r#"<line x1="{l}" x2="{l}" y1="{t}" y2="{b:.1}" class="axisline"/><line x1="{l}" x2="{r:.1}" y1="{b:.1}" y2="{b:.1}" class="axisline"/><text x="{cx:.1}" y="{xy:.1}" text-anchor="middle" class="axistitle">{xt}</text>"#,
            l = self.left,
            t = self.top,
            b = self.top + self.h,
            r = self.left + self.w,
            cx = self.left + self.w / 2.0,
            xy = self.top + self.h + 34.0,
            xt = esc(x_title),
        );
        self.y_title(s, y_title);
    }

    /// Horizontal grid lines with their labels at the y axis's ticks.
    fn y_grid(&self, s: &mut String, fy: &dyn Fn(f64) -> String) {
        for t in ticks(self.y0, self.y1, 5) {
            let y = self.y(t);
            let _ = write!(
                s,
                r#"<line x1="{l}" x2="{r:.1}" y1="{y:.1}" y2="{y:.1}" class="grid"/><text x="{tx}" y="{ty:.1}" text-anchor="end" class="axis">{v}</text>"#,
                l = self.left,
                r = self.left + self.w,
                tx = self.left - 6.0,
                ty = y + 4.0,
                v = esc(&fy(t))
            );
        }
    }

    /// The y axis's title, turned along it.
    fn y_title(&self, s: &mut String, title: &str) {
        let _ = write!(
            s,
            r#"<text x="12" y="{cy:.1}" text-anchor="middle" class="axistitle" transform="rotate(-90 12 {cy:.1})">{yt}</text>"#,
            cy = self.top + self.h / 2.0,
            yt = esc(title)
        );
    }
}

fn legend(s: &mut String, names: &[String], x: f64, y: f64) {
    for (i, n) in names.iter().enumerate() {
        let yy = y + 16.0 * i as f64;
        let _ = write!(
            s,
            r#"<rect x="{x}" y="{ry:.1}" width="10" height="10" fill="{c}"/><text x="{tx}" y="{ty:.1}" class="axis">{n}</text>"#,
            ry = yy - 9.0,
            c = colour(i),
            tx = x + 14.0,
            ty = yy,
            n = esc(n)
        );
    }
}

/// One line of a line chart.
pub(crate) struct Series {
    pub(crate) name: String,
    pub(crate) points: Vec<(f64, f64)>,
}

/// Lines over a shared x axis; `fx`/`fy` label the axes' ticks.
pub(crate) fn lines(
    title: &str,
    series: &[Series],
    fx: &dyn Fn(f64) -> String,
    fy: &dyn Fn(f64) -> String,
    x_title: &str,
    y_title: &str,
) -> String {
    let all = series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, 0.0_f64);
    for &(x, y) in all {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y1 = y1.max(y);
    }
    if !x0.is_finite() {
        (x0, x1) = (0.0, 1.0);
    }
    let legend_w = if series.len() > 1 { 170.0 } else { 0.0 };
    let f = Frame {
        x0,
        x1,
        y0: 0.0,
        y1: ticks(0.0, y1.max(1e-9), 5).last().copied().unwrap_or(y1),
        left: 70.0,
        top: 10.0,
        w: 620.0 - legend_w,
        h: 220.0,
    };
    let mut s = open(720.0, 280.0, title);
    f.axes(&mut s, fx, fy, x_title, y_title);
    for (i, se) in series.iter().enumerate() {
        let pts: Vec<String> = se
            .points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", f.x(x), f.y(y)))
            .collect();
        let _ = write!(
            s,
            r#"<g><title>{n}</title><polyline points="{p}" fill="none" stroke="{c}" stroke-width="2"/></g>"#,
            n = esc(&se.name),
            p = pts.join(" "),
            c = colour(i)
        );
        if se.points.len() <= 40 {
            for &(x, y) in &se.points {
                let _ = write!(
                    s,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{c}"><title>{n} · {xv}: {yv}</title></circle>"#,
                    f.x(x),
                    f.y(y),
                    c = colour(i),
                    n = esc(&se.name),
                    xv = esc(&fx(x)),
                    yv = esc(&fy(y))
                );
            }
        }
    }
    if series.len() > 1 {
        let names: Vec<String> = series.iter().map(|s| s.name.clone()).collect();
        legend(&mut s, &names, 720.0 - legend_w + 10.0, 20.0);
    }
    s.push_str("</svg>");
    s
}

/// A point of a scatter chart.
pub(crate) struct Point {
    pub(crate) x: f64,
    pub(crate) y: f64,
    pub(crate) group: usize,
    pub(crate) label: String,
}

/// A scatter chart with optional threshold lines (quadrants) and a legend of groups.
#[expect(
    clippy::too_many_arguments,
    reason = "a chart's axes, guides and legend"
)]
pub(crate) fn scatter(
    title: &str,
    points: &[Point],
    groups: &[String],
    fx: &dyn Fn(f64) -> String,
    fy: &dyn Fn(f64) -> String,
    x_title: &str,
    y_title: &str,
    guides: (Option<f64>, Option<f64>),
) -> String {
    let (mut x0, mut x1, mut y0, mut y1) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for p in points {
        x0 = x0.min(p.x);
        x1 = x1.max(p.x);
        y0 = y0.min(p.y);
        y1 = y1.max(p.y);
    }
    if !x0.is_finite() {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    let xt = ticks(x0.min(0.0), x1, 6);
    let yt = ticks(y0.min(0.0), y1, 5);
    let legend_w = if groups.len() > 1 { 170.0 } else { 0.0 };
    let f = Frame {
        x0: xt.first().copied().unwrap_or(x0),
        x1: xt.last().copied().unwrap_or(x1).max(x1),
        y0: yt.first().copied().unwrap_or(y0),
        y1: yt.last().copied().unwrap_or(y1).max(y1),
        left: 70.0,
        top: 10.0,
        w: 620.0 - legend_w,
        h: 300.0,
    };
    let mut s = open(720.0, 360.0, title);
    f.axes(&mut s, fx, fy, x_title, y_title);
    if let Some(gx) = guides.0 {
        let _ = write!(
            s,
            r#"<line x1="{x:.1}" x2="{x:.1}" y1="{t}" y2="{b:.1}" class="guide"/>"#,
            x = f.x(gx),
            t = f.top,
            b = f.top + f.h
        );
    }
    if let Some(gy) = guides.1 {
        let _ = write!(
            s,
            r#"<line x1="{l}" x2="{r:.1}" y1="{y:.1}" y2="{y:.1}" class="guide"/>"#,
            l = f.left,
            r = f.left + f.w,
            y = f.y(gy)
        );
    }
    for p in points {
        let _ = write!(
            s,
            r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{c}" fill-opacity="0.7"><title>{l}: {xv}, {yv}</title></circle>"#,
            f.x(p.x),
            f.y(p.y),
            c = colour(p.group),
            l = esc(&p.label),
            xv = esc(&fx(p.x)),
            yv = esc(&fy(p.y))
        );
    }
    if groups.len() > 1 {
        legend(&mut s, groups, 720.0 - legend_w + 10.0, 20.0);
    }
    s.push_str("</svg>");
    s
}

/// Vertical bars (histograms, counts by category).
pub(crate) fn columns(title: &str, bars: &[(String, f64, String)], y_title: &str) -> String {
    let n = bars.len().max(1) as f64;
    let max = bars.iter().map(|b| b.1).fold(0.0_f64, f64::max);
    let top = ticks(0.0, max.max(1e-9), 5).last().copied().unwrap_or(max);
    let f = Frame {
        x0: 0.0,
        x1: n,
        y0: 0.0,
        y1: top,
        left: 70.0,
        top: 10.0,
        w: 630.0,
        h: 220.0,
    };
    let mut s = open(720.0, 290.0, title);
    f.y_grid(&mut s, &super::html::compact);
    let bw = f.w / n;
    for (i, (label, v, text)) in bars.iter().enumerate() {
        let x = f.left + bw * i as f64;
        let y = f.y(*v);
        let _ = write!(
            s,
            r#"<g><title>{l}: {t}</title><rect x="{bx:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="{c}"/><text x="{cx:.1}" y="{ly:.1}" text-anchor="middle" class="axis">{l}</text></g>"#,
            l = esc(label),
            t = esc(text),
            bx = x + bw * 0.12,
            w = bw * 0.76,
            h = (f.top + f.h - y).max(0.0),
            c = colour(0),
            cx = x + bw / 2.0,
            ly = f.top + f.h + 16.0,
        );
    }
    f.y_title(&mut s, y_title);
    s.push_str("</svg>");
    s
}

/// Stacked columns: one column per period, one band per series (lifecycle, stages).
pub(crate) fn stacked(
    title: &str,
    periods: &[String],
    series: &[(String, Vec<f64>)],
    y_title: &str,
) -> String {
    let n = periods.len().max(1) as f64;
    let (mut lo, mut hi) = (0.0_f64, 0.0_f64);
    for i in 0..periods.len() {
        let (mut p, mut m) = (0.0, 0.0);
        for (_, v) in series {
            let x = v.get(i).copied().unwrap_or(0.0);
            if x >= 0.0 {
                p += x;
            } else {
                m += x;
            }
        }
        hi = hi.max(p);
        lo = lo.min(m);
    }
    let yt = ticks(lo, hi.max(1e-9), 5);
    let legend_w = 170.0;
    let f = Frame {
        x0: 0.0,
        x1: n,
        y0: yt.first().copied().unwrap_or(lo),
        y1: yt.last().copied().unwrap_or(hi),
        left: 70.0,
        top: 10.0,
        w: 620.0 - legend_w,
        h: 220.0,
    };
    let mut s = open(720.0, 290.0, title);
    f.y_grid(&mut s, &super::html::compact);
    let bw = f.w / n;
    // Label every k-th column so the labels never overlap.
    let label_px = periods.iter().map(|p| p.chars().count()).max().unwrap_or(1) as f64 * 6.5 + 10.0;
    let every = (label_px / bw).ceil().max(1.0) as usize;
    for (i, p) in periods.iter().enumerate() {
        let x = f.left + bw * i as f64;
        let (mut up, mut down) = (0.0, 0.0);
        for (k, (name, v)) in series.iter().enumerate() {
            let val = v.get(i).copied().unwrap_or(0.0);
            let (a, b) = if val >= 0.0 {
                let r = (up, up + val);
                up += val;
                r
            } else {
                let r = (down + val, down);
                down += val;
                r
            };
            let _ = write!(
                s,
                r#"<rect x="{bx:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="{c}"><title>{p} · {n}: {v}</title></rect>"#,
                bx = x + bw * 0.1,
                y = f.y(b),
                w = bw * 0.8,
                h = (f.y(a) - f.y(b)).max(0.0),
                c = colour(k),
                p = esc(p),
                n = esc(name),
                v = esc(&super::html::compact(val))
            );
        }
        if i % every == 0 {
            let _ = write!(
                s,
                r#"<text x="{cx:.1}" y="{ly:.1}" text-anchor="middle" class="axis">{p}</text>"#,
                cx = x + bw / 2.0,
                ly = f.top + f.h + 16.0,
                p = esc(p)
            );
        }
    }
    let names: Vec<String> = series.iter().map(|s| s.0.clone()).collect();
    legend(&mut s, &names, 720.0 - legend_w + 10.0, 20.0);
    f.y_title(&mut s, y_title);
    s.push_str("</svg>");
    s
}

/// A link of a flow between steps.
pub(crate) struct Link {
    pub(crate) step: usize,
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) value: f64,
}

/// A Sankey diagram of path steps: a column per step, a node per event, bands as wide as the
/// sessions that move between them.
pub(crate) fn sankey(title: &str, links: &[Link]) -> String {
    use std::collections::BTreeMap;
    let steps = links.iter().map(|l| l.step + 1).max().unwrap_or(0) + 1;
    // Node sizes: the larger of what flows in and out.
    let mut size: BTreeMap<(usize, String), (f64, f64)> = BTreeMap::new();
    for l in links {
        size.entry((l.step, l.from.clone())).or_default().1 += l.value;
        size.entry((l.step + 1, l.to.clone())).or_default().0 += l.value;
    }
    let height = 360.0;
    let width = 760.0;
    let node_w = 12.0;
    let gap = 10.0;
    let col_w = (width - 140.0) / (steps.max(2) - 1) as f64;
    let total_max = (0..steps)
        .map(|c| {
            size.iter()
                .filter(|((s, _), _)| *s == c)
                .map(|(_, (i, o))| i.max(*o))
                .sum::<f64>()
        })
        .fold(0.0_f64, f64::max);
    let max_nodes = (0..steps)
        .map(|c| size.keys().filter(|(s, _)| *s == c).count())
        .max()
        .unwrap_or(1) as f64;
    let scale = if total_max > 0.0 {
        (height - 20.0 - gap * max_nodes) / total_max
    } else {
        1.0
    };
    // Node positions, largest first in each column.
    let mut pos: BTreeMap<(usize, String), (f64, f64)> = BTreeMap::new();
    let mut names: Vec<String> = Vec::new();
    for c in 0..steps {
        let mut nodes: Vec<(&(usize, String), f64)> = size
            .iter()
            .filter(|((s, _), _)| *s == c)
            .map(|(k, (i, o))| (k, i.max(*o)))
            .collect();
        nodes.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.1.cmp(&b.0.1)));
        let mut y = 10.0;
        for (k, v) in nodes {
            pos.insert(k.clone(), (y, v * scale));
            y += v * scale + gap;
            if !names.contains(&k.1) {
                names.push(k.1.clone());
            }
        }
    }
    let col = |name: &str| colour(names.iter().position(|n| n == name).unwrap_or(0));
    let x_of = |c: usize| 70.0 + col_w * c as f64;
    let mut s = open(width, height, title);
    // Bands: stacked at each node's out and in sides, in link order by size.
    let mut out_used: BTreeMap<(usize, String), f64> = BTreeMap::new();
    let mut in_used: BTreeMap<(usize, String), f64> = BTreeMap::new();
    let mut sorted: Vec<&Link> = links.iter().collect();
    sorted.sort_by(|a, b| b.value.total_cmp(&a.value));
    for l in sorted {
        let (Some(&(fy, _)), Some(&(ty, _))) = (
            pos.get(&(l.step, l.from.clone())),
            pos.get(&(l.step + 1, l.to.clone())),
        ) else {
            continue;
        };
        let w = l.value * scale;
        let o = out_used.entry((l.step, l.from.clone())).or_default();
        let i = in_used.entry((l.step + 1, l.to.clone())).or_default();
        let (y1, y2) = (fy + *o + w / 2.0, ty + *i + w / 2.0);
        *o += w;
        *i += w;
        let (x1, x2) = (x_of(l.step) + node_w, x_of(l.step + 1));
        let mx = (x1 + x2) / 2.0;
        let _ = write!(
            s,
            r#"<path d="M{x1:.1},{y1:.1} C{mx:.1},{y1:.1} {mx:.1},{y2:.1} {x2:.1},{y2:.1}" fill="none" stroke="{c}" stroke-opacity="0.35" stroke-width="{sw:.1}"><title>{f} → {t}: {v}</title></path>"#,
            c = col(&l.from),
            sw = w.max(1.0),
            f = esc(&l.from),
            t = esc(&l.to),
            v = esc(&super::html::compact(l.value))
        );
    }
    for ((c, name), (y, h)) in &pos {
        let x = x_of(*c);
        let _ = write!(
            s,
            r#"<g><title>{n}</title><rect x="{x:.1}" y="{y:.1}" width="{node_w}" height="{h:.1}" fill="{fill}"/>"#,
            n = esc(name),
            fill = col(name),
            h = h.max(1.0)
        );
        if *h >= 10.0 {
            let (tx, anchor) = if *c + 1 == steps {
                (x - 4.0, "end")
            } else {
                (x + node_w + 4.0, "start")
            };
            let _ = write!(
                s,
                r#"<text x="{tx:.1}" y="{ty:.1}" text-anchor="{anchor}" class="axis">{n}</text>"#,
                ty = y + h / 2.0 + 4.0,
                n = esc(name)
            );
        }
        s.push_str("</g>");
    }
    s.push_str("</svg>");
    s
}

/// One row of an interval chart.
pub(crate) struct Interval {
    pub(crate) label: String,
    pub(crate) estimate: f64,
    pub(crate) low: f64,
    pub(crate) high: f64,
    /// Whether the interval excludes zero (drawn in colour).
    pub(crate) significant: bool,
}

/// Estimates with their intervals around a zero line (experiment lifts).
/// A label cut to about `width` Latin characters (a CJK character counts as two), ending in "…"
/// when cut; the whole label stays in the element's title.
fn fit(label: &str, width: usize) -> String {
    let mut used = 0;
    let mut out = String::new();
    for ch in label.chars() {
        let w = if ch > '\u{2E80}' { 2 } else { 1 };
        if used + w > width {
            out.push('…');
            return out;
        }
        used += w;
        out.push(ch);
    }
    out
}

pub(crate) fn intervals(title: &str, rows: &[Interval], fx: &dyn Fn(f64) -> String) -> String {
    let label_w = 230.0;
    let width = 760.0;
    let row = 28.0;
    let h = 30.0 + row * rows.len() as f64;
    let (mut lo, mut hi) = (0.0_f64, 0.0_f64);
    for r in rows {
        if r.low.is_finite() {
            lo = lo.min(r.low);
        }
        if r.high.is_finite() {
            hi = hi.max(r.high);
        }
    }
    let pad = ((hi - lo) * 0.08).max(1e-6);
    let (lo, hi) = (lo - pad, hi + pad);
    let plot_w = width - label_w - 30.0;
    let x = |v: f64| label_w + (v - lo) / (hi - lo) * plot_w;
    let mut s = open(width, h, title);
    for t in ticks(lo, hi, 6) {
        if t < lo || t > hi {
            continue;
        }
        let _ = write!(
            s,
            r#"<line x1="{x:.1}" x2="{x:.1}" y1="4" y2="{b:.1}" class="grid"/><text x="{x:.1}" y="{ty:.1}" text-anchor="middle" class="axis">{v}</text>"#,
            x = x(t),
            b = h - 22.0,
            ty = h - 8.0,
            v = esc(&fx(t))
        );
    }
    let _ = write!(
        s,
        r#"<line x1="{z:.1}" x2="{z:.1}" y1="4" y2="{b:.1}" class="zero"/>"#,
        z = x(0.0),
        b = h - 22.0
    );
    for (i, r) in rows.iter().enumerate() {
        let y = 16.0 + row * i as f64;
        let c = if r.significant {
            colour(if r.estimate >= 0.0 { 2 } else { 3 })
        } else {
            "#888"
        };
        let (a, b) = (
            if r.low.is_finite() { r.low } else { lo },
            if r.high.is_finite() { r.high } else { hi },
        );
        let _ = write!(
            s,
            r#"<g><title>{l}: {e} [{a}, {b}]</title><text x="{lx}" y="{ty:.1}" text-anchor="end" class="lbl">{short}</text><line x1="{x1:.1}" x2="{x2:.1}" y1="{y:.1}" y2="{y:.1}" stroke="{c}" stroke-width="3"/><circle cx="{cx:.1}" cy="{y:.1}" r="5" fill="{c}"/></g>"#,
            l = esc(&r.label),
            short = esc(&fit(&r.label, 26)),
            e = esc(&fx(r.estimate)),
            a = esc(&fx(r.low)),
            b = esc(&fx(r.high)),
            lx = label_w - 8.0,
            ty = y + 4.0,
            x1 = x(a),
            x2 = x(b),
            cx = x(r.estimate),
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        let t = ticks(0.0, 1.0, 5);
        assert_eq!(t.len(), 6);
        assert!((t[3] - 0.6).abs() < 1e-12 && (t[5] - 1.0).abs() < 1e-12);
        let t = ticks(0.0, 137.0, 5);
        assert_eq!(t.first(), Some(&0.0));
        assert!(*t.last().unwrap() >= 137.0 - 1e-9 || t.len() >= 5);
    }

    #[test]
    fn charts_escape_labels() {
        let svg = hbars(
            "t",
            &[Bar {
                label: "<script>".into(),
                value: 1.0,
                text: "1".into(),
                note: None,
            }],
        );
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;"));
    }
}
