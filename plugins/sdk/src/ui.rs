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
//!   CSP allows no inline script, so plugins never ship their own);
//! - a page that reloads itself: [`auto_reload`], never a
//!   `<meta http-equiv="refresh">` (the reader must be able to pause it).
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
/// (so a phone with a wrong clock still shows the right time). The theme's
/// script writes each `[data-format]` element in its own pattern (the
/// locale's `format_clock`); in a bilingual locale the clock shows both
/// languages, like every text. Without script it shows the time of the page.
pub fn clock(now: i64, locale: &str) -> String {
    let one = |lang: &str| {
        let p = crate::human::pattern(lang, "format_clock");
        // The text before the clock ticks, in this one language.
        let plain = crate::human::datetime_plain(now, lang);
        format!("<span lang=\"{}\" data-format=\"{}\">{}</span>", esc(lang), esc(p), esc(&plain))
    };
    let inner = match crate::bilingual::companion(locale) {
        Some(other) => {
            format!("<span class=\"bi\">{} <span class=\"bi-beside\">{}</span></span>", one(locale), one(other))
        }
        None => one(locale),
    };
    format!(
        "<p class=\"clock\" data-clock data-now=\"{now}\" data-offset=\"{}\" aria-live=\"off\">{inner}</p>",
        crate::human::CST_OFFSET,
    )
}

/// Reloads the page after `seconds` (e.g. before a code shown on it
/// expires), with the time left and a button to pause and resume (WCAG
/// 2.2.1). The theme's script runs it; without script the block stays
/// hidden and nothing reloads. One per page.
pub fn auto_reload(seconds: i64, locale: &str) -> String {
    use crate::bilingual::sdk_label;
    let left = format!("<span data-reload-left>{seconds}</span>");
    format!(
        "<div class=\"auto-reload\" id=\"auto-reload\" data-reload=\"{seconds}\" hidden>\
<p class=\"hint\"><span data-reload-running>{running}</span><span data-reload-paused hidden>{paused}</span></p>\
<button type=\"button\" class=\"secondary\" id=\"auto-reload-toggle\" data-reload-toggle>\
<span data-reload-running>{pause}</span><span data-reload-paused hidden>{resume}</span></button></div>",
        running = esc(&sdk_label(locale, "reload_in")).replace("{seconds}", &left),
        paused = esc(&sdk_label(locale, "reload_paused")),
        pause = esc(&sdk_label(locale, "reload_pause")),
        resume = esc(&sdk_label(locale, "reload_resume")),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn components_escape_their_text() {
        let t = super::tabs("x", &[super::Tab { href: "/a?b=1&c=2", label: "<i>", current: false }]);
        assert!(t.contains("href=\"/a?b=1&amp;c=2\"") && t.contains("&lt;i&gt;"));
        assert!(super::clock(0, "en").contains("data-clock data-now=\"0\""));
        let bo = super::clock(0, "bo");
        assert!(
            bo.contains(
                "<span lang=\"bo\" data-format=\"ཕྱི་ལོ་%Y ཟླ་%-m ཚེས་%-d %H:%M:%S\">ཕྱི་ལོ་1970 ཟླ་1 ཚེས་1 08:00</span>"
            ),
            "{bo}"
        );
        assert!(bo.contains("class=\"bi-beside\"><span lang=\"zh-CN\" data-format=\"%Y年%m月%d日 %H:%M:%S\">1970年01月01日 08:00</span>"), "{bo}");
        assert!(!bo.contains(crate::bilingual::OPEN), "no pair marks: the clock is already both languages");
        let r = super::auto_reload(42, "en");
        assert!(r.contains("data-reload=\"42\" hidden") && r.contains("<span data-reload-left>42</span> s."), "{r}");
        assert!(super::auto_reload(5, "bo").contains(crate::bilingual::OPEN), "Tibetan with the Chinese");
    }
}
