//! 《用户服务协议》, 《隐私政策》 and where to get the app as readable pages
//! (issue 19; PIPL expects them readable before consent): `/legal/terms`,
//! `/legal/privacy`, `/legal/app`. Each comes, per locale, from `[portal]`
//! (a file or inline text), else the theme folder's `legal/<doc>.<locale>.md`,
//! else the text shipped in the default theme. The text is plain with a few
//! marks: `# ` and `## ` headings, `- ` list items, blank lines between
//! paragraphs; everything is escaped, nothing in it can run.
use crate::config::DocumentSource;
use crate::kit::cookies;
use crate::kit::pages::{error_page, page};
use crate::server::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

/// The documents this page serves, with their shipped texts.
const DOCS: &[(&str, &str, &str)] = &[
    (
        "terms",
        include_str!("../../../themes/default/legal/terms.zh-CN.md"),
        include_str!("../../../themes/default/legal/terms.en.md"),
    ),
    (
        "privacy",
        include_str!("../../../themes/default/legal/privacy.zh-CN.md"),
        include_str!("../../../themes/default/legal/privacy.en.md"),
    ),
    (
        "app",
        include_str!("../../../themes/default/legal/app.zh-CN.md"),
        include_str!("../../../themes/default/legal/app.en.md"),
    ),
];

/// `GET /legal/{terms|privacy|app}`.
pub async fn show(State(state): State<AppState>, headers: HeaderMap, Path(doc): Path<String>) -> Response {
    let locale = cookies::locale(&state, &headers, None);
    let Some((name, zh, en)) = DOCS.iter().find(|(n, _, _)| *n == doc) else {
        return error_page(&state, StatusCode::NOT_FOUND, locale, "error_not_found");
    };
    let configured = match *name {
        "terms" => state.config.portal.terms.get(locale),
        "privacy" => state.config.portal.privacy.get(locale),
        _ => None,
    };
    let text = match text_of(&state, name, locale, configured).await {
        Ok(Some(t)) => t,
        Ok(None) => (if locale == "en" { *en } else { *zh }).to_string(),
        Err(e) => {
            tracing::error!("legal document {name} ({locale}) unreadable: {e}");
            return error_page(&state, StatusCode::SERVICE_UNAVAILABLE, locale, "error_unavailable");
        }
    };
    let mut ctx = tera::Context::new();
    ctx.insert("doc", name);
    ctx.insert("title", &state.pages.text(locale, &format!("legal_{name}_title")));
    ctx.insert("html", &render(&text));
    page(&state, StatusCode::OK, "legal.html", locale, ctx)
}

/// The configured or theme-folder text, if any.
async fn text_of(
    state: &AppState,
    name: &str,
    locale: &str,
    configured: Option<&DocumentSource>,
) -> std::io::Result<Option<String>> {
    if let Some(src) = configured {
        if let Some(t) = &src.text {
            return Ok(Some(t.clone()));
        }
        if let Some(f) = &src.file {
            return tokio::fs::read_to_string(f).await.map(Some);
        }
    }
    if let Some(dir) = &state.config.theme_dir {
        let path = dir.join("legal").join(format!("{name}.{locale}.md"));
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            return tokio::fs::read_to_string(path).await.map(Some);
        }
    }
    Ok(None)
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

/// Ends the paragraph being collected.
fn flush(out: &mut String, para: &mut Vec<&str>) {
    if !para.is_empty() {
        out.push_str(&format!("<p>{}</p>\n", escape(&para.join(" "))));
        para.clear();
    }
}

/// The plain text as HTML: headings, lists and paragraphs, all escaped.
pub fn render(text: &str) -> String {
    let mut out = String::new();
    let mut para: Vec<&str> = Vec::new();
    let mut in_list = false;
    for line in text.lines().map(str::trim_end) {
        let item = line.strip_prefix("- ");
        if in_list && item.is_none() {
            out.push_str("</ul>\n");
            in_list = false;
        }
        if let Some(h) = line.strip_prefix("## ") {
            flush(&mut out, &mut para);
            out.push_str(&format!("<h3>{}</h3>\n", escape(h)));
        } else if let Some(h) = line.strip_prefix("# ") {
            // The page's own title is the h1; the document's top heading is an h2.
            flush(&mut out, &mut para);
            out.push_str(&format!("<h2>{}</h2>\n", escape(h)));
        } else if let Some(i) = item {
            flush(&mut out, &mut para);
            if !in_list {
                out.push_str("<ul>\n");
                in_list = true;
            }
            out.push_str(&format!("<li>{}</li>\n", escape(i)));
        } else if line.trim().is_empty() {
            flush(&mut out, &mut para);
        } else {
            para.push(line.trim());
        }
    }
    flush(&mut out, &mut para);
    if in_list {
        out.push_str("</ul>\n");
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn plain_text_becomes_escaped_html() {
        let html = super::render("# 标题\n\n第一段\n续行\n\n- 甲\n- <b>乙</b>\n\n## 小节\n末段");
        assert_eq!(
            html,
            "<h2>标题</h2>\n<p>第一段 续行</p>\n<ul>\n<li>甲</li>\n<li>&lt;b&gt;乙&lt;/b&gt;</li>\n</ul>\n<h3>小节</h3>\n<p>末段</p>\n"
        );
    }
}
