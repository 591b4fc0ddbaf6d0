//! The portal theme's components for plugin pages (issue 19). A
//! [`crate::Response::Page`] is rendered inside the provider's frame
//! (header, menu, language switch, footer) in a `<div class="plugin">`;
//! these helpers write the markup the theme styles, so a plugin's pages
//! look like the provider's own:
//!
//! - forms: `<form class="form">` with `<label>` + `<input>` / `<select>`,
//!   `<button type="submit">` (primary) or `class="secondary"`;
//! - tables: a plain `<table>` (headings in `<th>`);
//! - notices: `<p class="notice">`, `<p class="notice error">`;
//! - tabs: [`tabs`]; a link styled as a button: [`button_link`];
//! - a live clock: [`clock`] (the theme's same-origin script ticks it; the
//!   CSP allows no inline script, so plugins never ship their own).
//!
//! Every text passed in is escaped here; `html` arguments are trusted.
use crate::escape_html as esc;

/// One tab: its link, its (plain) label, and whether it is the current one.
pub struct Tab<'a> {
    pub href: &'a str,
    pub label: &'a str,
    pub current: bool,
}

/// A tab bar (`<ul class="tabs">`); the current tab is marked for screen
/// readers and styled as active.
pub fn tabs(label: &str, items: &[Tab]) -> String {
    let mut out = format!("<nav aria-label=\"{}\"><ul class=\"tabs\">", esc(label));
    for t in items {
        if t.current {
            out.push_str(&format!("<li class=\"current\"><span aria-current=\"page\">{}</span></li>", esc(t.label)));
        } else {
            out.push_str(&format!("<li><a href=\"{}\">{}</a></li>", esc(t.href), esc(t.label)));
        }
    }
    out.push_str("</ul></nav>");
    out
}

/// A link that looks like a button; `secondary` for the quieter style.
pub fn button_link(href: &str, label: &str, secondary: bool) -> String {
    let class = if secondary { "button secondary" } else { "button" };
    format!("<a class=\"{class}\" href=\"{}\">{}</a>", esc(href), esc(label))
}

/// A live clock in China Standard Time, starting at the provider's `now`
/// (so a phone with a wrong clock still shows the right time). Without
/// script it shows the time of the page.
pub fn clock(now: i64, locale: &str) -> String {
    format!(
        "<p class=\"clock\" data-clock data-now=\"{now}\" data-offset=\"{}\" aria-live=\"off\">{}</p>",
        crate::human::CST_OFFSET,
        esc(&crate::human::datetime(now, locale))
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn components_escape_their_text() {
        let t = super::tabs("x", &[super::Tab { href: "/a?b=1&c=2", label: "<i>", current: false }]);
        assert!(t.contains("href=\"/a?b=1&amp;c=2\"") && t.contains("&lt;i&gt;"));
        assert!(super::clock(0, "en").contains("data-clock data-now=\"0\""));
    }
}
