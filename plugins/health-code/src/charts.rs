//! Inline SVG charts for the statistics page (E5): daily trends as grouped
//! bars and shares by type as a ring. Inline, presentation attributes only,
//! so the provider's CSP (no inline styles, no scripts) allows them.
use idp_plugin_sdk::escape_html as esc;

pub const PALETTE: &[&str] = &["#2e7d32", "#1565c0", "#ef6c00", "#6a1b9a"];

/// One series: a legend label and a value per day.
pub struct Series<'a> {
    pub label: &'a str,
    pub values: Vec<u64>,
}

/// Grouped bars: one group per day (`days` labels), one bar per series.
pub fn daily_bars(title: &str, days: &[String], series: &[Series]) -> String {
    let (w, h, left, bottom, top) = (720.0_f64, 260.0_f64, 40.0_f64, 40.0_f64, 30.0_f64);
    let max = series.iter().flat_map(|s| s.values.iter().copied()).max().unwrap_or(0).max(1) as f64;
    let plot_h = h - bottom - top;
    let group = (w - left - 10.0) / days.len().max(1) as f64;
    let bar = (group * 0.8 / series.len().max(1) as f64).max(1.0);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" role=\"img\" viewBox=\"0 0 {w} {h}\" width=\"100%\"><title>{}</title>",
        esc(title)
    );
    svg.push_str(&format!(
        "<line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#999\"/><text x=\"4\" y=\"{}\" font-size=\"11\">{}</text><text x=\"4\" y=\"{}\" font-size=\"11\">0</text>",
        h - bottom, w - 10.0, h - bottom, top + 4.0, max as u64, h - bottom
    ));
    for (d, day) in days.iter().enumerate() {
        let gx = left + d as f64 * group + group * 0.1;
        for (i, s) in series.iter().enumerate() {
            let v = s.values.get(d).copied().unwrap_or(0);
            let bh = v as f64 / max * plot_h;
            svg.push_str(&format!(
                "<rect class=\"bar\" data-series=\"{}\" data-day=\"{}\" data-value=\"{v}\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"/>",
                esc(s.label),
                esc(day),
                gx + i as f64 * bar,
                h - bottom - bh,
                bar,
                bh,
                PALETTE[i % PALETTE.len()]
            ));
        }
        if days.len() <= 16 {
            svg.push_str(&format!(
                "<text x=\"{:.1}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\">{}</text>",
                gx + group * 0.4,
                h - bottom + 14.0,
                esc(day.get(5..).unwrap_or(day))
            ));
        }
    }
    for (i, s) in series.iter().enumerate() {
        let x = left + i as f64 * 140.0;
        svg.push_str(&format!(
            "<rect x=\"{x}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"{}\" font-size=\"12\">{}</text>",
            h - 14.0,
            PALETTE[i % PALETTE.len()],
            x + 14.0,
            h - 5.0,
            esc(s.label)
        ));
    }
    svg.push_str("</svg>");
    svg
}

/// A ring of shares (`(label, count)`), with a legend of counts and percents.
pub fn shares_ring(title: &str, parts: &[(String, u64)]) -> String {
    let total: u64 = parts.iter().map(|(_, n)| n).sum();
    let r = 60.0_f64;
    let circ = 2.0 * std::f64::consts::PI * r;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" role=\"img\" viewBox=\"0 0 340 170\" width=\"100%\"><title>{}</title><text x=\"10\" y=\"16\" font-size=\"13\">{}</text>",
        esc(title),
        esc(title)
    );
    svg.push_str(&format!("<circle cx=\"85\" cy=\"95\" r=\"{r}\" fill=\"none\" stroke=\"#eee\" stroke-width=\"24\"/>"));
    let mut offset = 0.0;
    for (i, (label, n)) in parts.iter().enumerate() {
        let share = if total == 0 { 0.0 } else { *n as f64 / total as f64 };
        let len = share * circ;
        if len > 0.0 {
            svg.push_str(&format!(
                "<circle class=\"share\" data-label=\"{}\" data-value=\"{n}\" cx=\"85\" cy=\"95\" r=\"{r}\" fill=\"none\" stroke=\"{}\" stroke-width=\"24\" stroke-dasharray=\"{len:.2} {:.2}\" stroke-dashoffset=\"{:.2}\" transform=\"rotate(-90 85 95)\"/>",
                esc(label),
                PALETTE[i % PALETTE.len()],
                circ - len,
                -offset
            ));
        }
        offset += len;
        let y = 50.0 + i as f64 * 22.0;
        svg.push_str(&format!(
            "<rect x=\"170\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{}\"/><text x=\"188\" y=\"{y}\" font-size=\"12\">{} {n} ({:.0}%)</text>",
            y - 10.0,
            PALETTE[i % PALETTE.len()],
            esc(label),
            share * 100.0
        ));
    }
    svg.push_str(&format!("<text x=\"85\" y=\"100\" font-size=\"16\" text-anchor=\"middle\">{total}</text></svg>"));
    svg
}
