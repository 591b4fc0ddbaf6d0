//! Bilingual pages (G4): in a locale whose file names a companion
//! (`lang_beside = "zh-CN"` in `bo.toml`), every text a template shows
//! appears in both languages, as the Tibetan regional portals do —
//! `<span lang="bo">…</span><span lang="zh-CN">…</span>` — while a text in an
//! attribute (`placeholder`, `aria-label`, `alt`, `title`) or in an element
//! that holds only text (`<title>`, `<option>`, `<textarea>`) stays plain, and
//! one inside an `<svg>` (a drawn card, a chart) shows its own language only.
//! Plugins write the same pairs through the SDK (`idp_plugin_sdk::bilingual`,
//! which defines the marks), so their pages are bilingual too.
//!
//! Tera escapes without knowing where a value lands, so the pair travels
//! through the template as one value between private-use marks that HTML
//! escaping leaves alone, and [`render`] replaces each pair once the page is
//! rendered, by where it stands. Templates need no change: `{{ t.key }}`
//! works in every locale.
use serde_json::{Map, Value};

use idp_plugin_sdk::bilingual::{CLOSE, OPEN, SEP};

/// One text in both languages, for a template (plain when they are equal).
pub fn pair(own: &str, companion: &str) -> String {
    idp_plugin_sdk::bilingual::pair(own, companion)
}

/// A locale's table with each text paired with the companion's.
pub fn pair_all(own: &Map<String, Value>, companion: &Map<String, Value>) -> Map<String, Value> {
    own.iter()
        .map(|(k, v)| {
            let paired = match (v.as_str(), companion.get(k).and_then(Value::as_str)) {
                (Some(a), Some(b)) => Value::String(pair(a, b)),
                _ => v.clone(),
            };
            (k.clone(), paired)
        })
        .collect()
}

/// Elements whose content is text only: a pair becomes "own / companion".
const TEXT_ONLY: &[&str] = &["title", "option", "textarea", "script", "style"];

/// Elements where a pair shows its own language only, as in an attribute
/// (markup inside an SVG would leave it; the drawing has no room for two).
const OWN_ONLY: &[&str] = &["svg"];

/// Reads one pair after its `OPEN`. A pair put inside another (a text
/// with a paired value substituted into it) gives each side its own
/// language.
fn read_pair(chars: &mut std::str::Chars<'_>) -> (String, String) {
    let (mut own, mut other, mut second) = (String::new(), String::new(), false);
    while let Some(d) = chars.next() {
        match d {
            OPEN => {
                let (o, t) = read_pair(chars);
                if second { other.push_str(&t) } else { own.push_str(&o) }
            }
            SEP => second = true,
            CLOSE => break,
            _ if second => other.push(d),
            _ => own.push(d),
        }
    }
    (own, other)
}

/// Replaces every pair in a rendered page by where it stands.
pub fn render(html: &str, own_lang: &str, companion_lang: &str) -> String {
    if !html.contains(OPEN) {
        return html.to_string();
    }
    let mut out = String::with_capacity(html.len() + html.len() / 2);
    let mut in_tag = false;
    let mut tag = String::new();
    let mut reading_name = false;
    // The text-only element we are inside, if any.
    let mut text_only: Option<&'static str> = None;
    let mut chars = html.chars();
    while let Some(c) = chars.next() {
        match c {
            OPEN => {
                let (own, other) = read_pair(&mut chars);
                if in_tag || text_only.is_some_and(|t| OWN_ONLY.contains(&t)) {
                    out.push_str(&own);
                } else if text_only.is_some() {
                    out.push_str(&own);
                    out.push_str(" / ");
                    out.push_str(&other);
                } else {
                    out.push_str(&format!(
                        "<span class=\"bi\"><span lang=\"{own_lang}\">{own}</span> <span lang=\"{companion_lang}\" class=\"bi-beside\">{other}</span></span>"
                    ));
                }
            }
            '<' if !in_tag => {
                in_tag = true;
                reading_name = true;
                tag.clear();
                out.push(c);
            }
            '>' if in_tag => {
                in_tag = false;
                let name = tag.to_ascii_lowercase();
                if let Some(closing) = name.strip_prefix('/') {
                    if text_only.is_some_and(|t| t == closing) {
                        text_only = None;
                    }
                } else if text_only.is_none() {
                    text_only = TEXT_ONLY.iter().chain(OWN_ONLY).find(|t| **t == name).copied();
                }
                out.push(c);
            }
            _ => {
                if in_tag && reading_name {
                    if c.is_ascii_alphanumeric() || (c == '/' && tag.is_empty()) || c == '!' || c == '-' {
                        tag.push(c);
                    } else {
                        reading_name = false;
                    }
                }
                out.push(c);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_inside_a_pair_keeps_each_language() {
        let inner = pair("App-bo", "App-zh");
        let outer = pair("use {app} bo", "用 {app}").replace("{app}", &inner);
        let html = render(&format!("<p>{outer}</p>"), "bo", "zh-CN");
        assert!(html.contains("<span lang=\"bo\">use App-bo bo</span>"), "{html}");
        assert!(html.contains("class=\"bi-beside\">用 App-zh</span>"), "{html}");
        assert!(!html.contains(OPEN) && !html.contains(SEP) && !html.contains(CLOSE), "{html}");
    }

    #[test]
    fn pairs_show_both_in_text_and_one_in_attributes() {
        let p = pair("ཐོ་འགོད།", "登录");
        let html = format!(
            "<title>{p}</title><label for=\"u\" title=\"{p}\">{p}</label><select><option value=\"a\">{p}</option></select><button>{p}</button>"
        );
        let out = render(&html, "bo", "zh-CN");
        assert_eq!(
            out,
            "<title>ཐོ་འགོད། / 登录</title><label for=\"u\" title=\"ཐོ་འགོད།\"><span class=\"bi\"><span lang=\"bo\">ཐོ་འགོད།</span> <span lang=\"zh-CN\" class=\"bi-beside\">登录</span></span></label><select><option value=\"a\">ཐོ་འགོད། / 登录</option></select><button><span class=\"bi\"><span lang=\"bo\">ཐོ་འགོད།</span> <span lang=\"zh-CN\" class=\"bi-beside\">登录</span></span></button>"
        );
        assert!(!out.contains(OPEN) && !out.contains(SEP) && !out.contains(CLOSE));
    }

    #[test]
    fn pairs_in_an_svg_show_their_own_language() {
        let p = pair("ཀ", "甲");
        let out = render(&format!("<svg><text x=\"1\">{p}</text></svg><p>{p}</p>"), "bo", "zh-CN");
        assert!(out.starts_with("<svg><text x=\"1\">ཀ</text></svg><p><span class=\"bi\">"), "{out}");
    }

    #[test]
    fn equal_texts_and_pages_without_pairs_are_unchanged() {
        assert_eq!(pair("English", "English"), "English");
        let html = "<p>plain</p>";
        assert_eq!(render(html, "bo", "zh-CN"), html);
    }
}
