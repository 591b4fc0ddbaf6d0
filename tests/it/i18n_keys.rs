//! Languages (G4, issue 19): every text a page or a handler asks for exists
//! in zh-CN, en and bo, for the theme and for each plugin; Tibetan pages show
//! Chinese beside the Tibetan; the locale list is configuration; the plain
//! "gov" theme serves its own CSS and falls back to the default templates.
//!
//! The key check reads the files (no server) and, when it fails, lists every
//! missing key per file with its Chinese text, ready to translate.
use crate::both;
use crate::support::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const LOCALES: &[&str] = &["zh-CN", "en", "bo"];

/// Locale files by locale: where each is and its key → text.
type Tables<'a> = BTreeMap<&'a str, (PathBuf, BTreeMap<String, String>)>;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn files(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, ext, out);
        } else if p.extension().is_some_and(|x| x == ext) {
            out.push(p);
        }
    }
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'
}

/// `t.key` in a template (not `x.t.key`, not `t[expr]`).
fn template_keys(text: &str) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let bytes = text.as_bytes();
    for (i, _) in text.match_indices("t.") {
        let before = if i == 0 { ' ' } else { bytes[i - 1] as char };
        if before.is_ascii_alphanumeric() || before == '_' || before == '.' {
            continue;
        }
        let key: String = text[i + 2..].chars().take_while(|c| is_key_char(*c)).collect();
        if key.starts_with(|c: char| c.is_ascii_lowercase()) {
            keys.insert(key);
        }
    }
    keys
}

/// Keys Rust code hands to the locale files: the last string argument of
/// `.text(…)`, `.label(…)`, `error_page(…)`, `bad_request(…)`,
/// `forbidden(…)` and `Refused(…)` when it is a literal.
fn code_keys(text: &str) -> BTreeSet<String> {
    calls_keys(text, &[".text(", ".label(", "error_page(", "bad_request(", "forbidden(", "Refused("], true)
}

/// Keys a plugin's code hands to its locale files: `.t("…")`, `.title("…")`
/// and `texts.get(…, "…")` / `texts.plain(…, "…")` with a literal key.
fn plugin_code_keys(text: &str) -> BTreeSet<String> {
    calls_keys(text, &[".t(", ".title(", "texts.get(", "texts.plain(", "sdk_label("], false)
}

/// The literal last arguments of `calls` that look like keys (with a `_`
/// when `snake` is set, to tell keys from other literals).
fn calls_keys(text: &str, calls: &[&str], snake: bool) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for call in calls {
        for (i, _) in text.match_indices(call) {
            // The argument list up to the matching parenthesis, on one call.
            let rest = &text[i + call.len()..];
            let mut depth = 1;
            let mut end = rest.len();
            for (j, c) in rest.char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            end = j;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let args = rest[..end].trim().trim_end_matches(',').trim();
            let last = args.rsplit(',').next().unwrap_or("").trim();
            if let Some(lit) = last.strip_prefix('"').and_then(|l| l.strip_suffix('"'))
                && !lit.is_empty()
                && lit.chars().all(is_key_char)
                && (lit.contains('_') || !snake)
            {
                keys.insert(lit.to_string());
            }
        }
    }
    keys
}

fn toml_table(path: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let table: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    table.into_iter().map(|(k, v)| (k, v.as_str().unwrap_or_default().to_string())).collect()
}

fn json_table(path: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    map.into_iter().map(|(k, v)| (k, v.as_str().unwrap_or_default().to_string())).collect()
}

/// `{name}` placeholders of a text.
fn placeholders(text: &str) -> BTreeSet<String> {
    text.split('{').skip(1).filter_map(|s| s.split_once('}')).map(|(p, _)| p.to_string()).collect()
}

/// Compares one set of locale files (keyed by locale) against zh-CN and the
/// keys the code refers to; returns the report lines.
fn check(label: &str, tables: &Tables, used: &BTreeSet<String>) -> Vec<String> {
    let mut report = Vec::new();
    let Some((_, zh)) = tables.get("zh-CN") else {
        return vec![format!("{label}: no zh-CN file")];
    };
    for locale in LOCALES {
        let Some((path, table)) = tables.get(locale) else {
            report.push(format!("{label}: no {locale} file"));
            continue;
        };
        let file = path.strip_prefix(root()).unwrap_or(path).display().to_string();
        let mut missing: Vec<String> =
            zh.iter().filter(|(k, _)| !table.contains_key(*k)).map(|(k, v)| format!("    {k} = {v:?}")).collect();
        missing.extend(
            used.iter()
                .filter(|k| !table.contains_key(*k) && !zh.contains_key(*k))
                .map(|k| format!("    {k} = ?   (used in code, in no locale file)")),
        );
        if !missing.is_empty() {
            report.push(format!("{file} is missing {} key(s) (zh-CN text shown):", missing.len()));
            report.extend(missing);
        }
        let extra: Vec<&String> = table.keys().filter(|k| !zh.contains_key(*k)).collect();
        if !extra.is_empty() && *locale != "zh-CN" {
            report.push(format!("{file} has {} key(s) that zh-CN lacks: {extra:?}", extra.len()));
        }
        let wrong: Vec<&String> = zh
            .iter()
            .filter(|(k, v)| table.get(*k).is_some_and(|t| placeholders(t) != placeholders(v)))
            .map(|(k, _)| k)
            .collect();
        if !wrong.is_empty() {
            report.push(format!("{file}: placeholders ({{name}}) differ from zh-CN in {wrong:?}"));
        }
    }
    report
}

#[test]
fn every_key_exists_in_zh_en_and_bo() {
    let root = root();
    let mut report = Vec::new();

    // The theme: keys in templates (default and gov) and in Rust code.
    let mut used = BTreeSet::new();
    let mut templates = Vec::new();
    files(&root.join("themes"), "html", &mut templates);
    assert!(templates.len() > 40, "templates found: {}", templates.len());
    for t in &templates {
        used.extend(template_keys(&std::fs::read_to_string(t).unwrap()));
    }
    let mut sources = Vec::new();
    files(&root.join("idp/src"), "rs", &mut sources);
    files(&root.join("core/src"), "rs", &mut sources);
    for s in &sources {
        used.extend(code_keys(&std::fs::read_to_string(s).unwrap()));
    }
    assert!(used.contains("login_title") && used.contains("error_not_found"), "the scan finds keys");
    let theme: Tables = LOCALES
        .iter()
        .map(|l| {
            let p = root.join(format!("themes/default/locales/{l}.toml"));
            (*l, (p.clone(), toml_table(&p)))
        })
        .collect();
    report.extend(check("theme", &theme, &used));

    // Each plugin's locale files.
    let mut plugin_dirs: Vec<PathBuf> = std::fs::read_dir(root.join("plugins"))
        .unwrap()
        .flatten()
        .map(|e| e.path().join("locales"))
        .filter(|p| p.is_dir())
        .collect();
    plugin_dirs.sort();
    assert!(plugin_dirs.len() >= 3, "plugins with locales: {plugin_dirs:?}");
    for dir in &plugin_dirs {
        let tables: Tables = LOCALES
            .iter()
            .filter_map(|l| {
                let p = dir.join(format!("{l}.json"));
                p.exists().then(|| (*l, (p.clone(), json_table(&p))))
            })
            .collect();
        let mut sources = Vec::new();
        files(&dir.parent().unwrap().join("src"), "rs", &mut sources);
        let used: BTreeSet<String> =
            sources.iter().flat_map(|s| plugin_code_keys(&std::fs::read_to_string(s).unwrap())).collect();
        report.extend(check(&dir.display().to_string(), &tables, &used));
    }
    assert!(report.is_empty(), "locale files are incomplete:\n{}", report.join("\n"));
}

#[test]
fn the_scanners_find_keys() {
    let t = template_keys("<h1>{{ t.login_title }}</h1>{{ x.t.no }}<a title=\"{{t.frame_menu}}\">{{ t[k] }}");
    assert_eq!(t.into_iter().collect::<Vec<_>>(), ["frame_menu", "login_title"]);
    let c = code_keys(
        "state.pages.text(locale, \"sms_code_text\"); PageError::bad_request(\"kin_bad_id\"); error_page(&s, StatusCode::OK, l, \"error_csrf\"); x.text(a, b);",
    );
    assert_eq!(c.into_iter().collect::<Vec<_>>(), ["error_csrf", "kin_bad_id", "sms_code_text"]);
    let p =
        plugin_code_keys("v.t(\"renew\"); self.texts.get(&self.req.locale, \"list_title\"); v.t(&format!(\"x_{k}\"));");
    assert_eq!(p.into_iter().collect::<Vec<_>>(), ["list_title", "renew"]);
}

/// Tibetan pages: `lang="bo"`, each text in Tibetan with the Chinese beside
/// it, attributes in Tibetan only; the switch names each offered language
/// in itself.
async fn tibetan_pages_are_bilingual(b: Backend) {
    let app = spawn(b).await;
    let bo = toml_table(&root().join("themes/default/locales/bo.toml"));
    let zh = toml_table(&root().join("themes/default/locales/zh-CN.toml"));
    let browser = Browser::new();
    let res = browser.http.get(app.url("/lang?to=bo&back=%2Flogin")).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let html = browser.http.get(app.url("/login")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("<html lang=\"bo\">"), "{html}");
    let pair = format!(
        "<span class=\"bi\"><span lang=\"bo\">{}</span> <span lang=\"zh-CN\" class=\"bi-beside\">{}</span></span>",
        bo["login_title"], zh["login_title"]
    );
    assert!(html.contains(&format!("<h1>{pair}</h1>")), "the heading in both languages: {html}");
    assert!(
        html.contains(&format!("placeholder=\"{}\"", bo["login_username_placeholder"])),
        "an attribute holds Tibetan only"
    );
    assert!(html.contains(&format!("<title>{} / {}", bo["login_title"], zh["login_title"])), "the title is plain text");
    assert!(!html.contains(['\u{F8F0}', '\u{F8F1}', '\u{F8F2}']), "no marks left");
    // The switch offers the other configured languages by their own names.
    assert!(html.contains("id=\"lang-zh\"") && html.contains(">中文</a>"));
    assert!(html.contains("id=\"lang-en\"") && html.contains(">English</a>"));
    assert!(!html.contains("id=\"lang-bo\""), "not the language already shown");
    // Accept-Language picks Tibetan too, and the Chinese page offers it.
    let html = api().get(app.url("/login")).header("accept-language", "bo-CN,zh;q=0.8").send().await.unwrap();
    let html = html.text().await.unwrap();
    assert!(html.contains("<html lang=\"bo\">"));
    let html = api().get(app.url("/login")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("<html lang=\"zh-CN\">") && html.contains(">བོད་ཡིག</a>") && html.contains("id=\"lang-bo\""));
    // An error page: the message in both languages.
    let html = browser.http.get(app.url("/no-such-page")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains(&format!("<span lang=\"bo\">{}</span>", bo["error_not_found"])), "{html}");
    // Discovery names the configured locales.
    let d = json(api().get(app.url("/.well-known/openid-configuration")).send().await.unwrap()).await;
    assert_eq!(d["ui_locales_supported"], serde_json::json!(["zh-CN", "en", "bo"]));
    // Every page template renders in Tibetan with no mark left over.
    for name in app.state.pages.template_names() {
        let html = app.state.pages.render(name, "bo", crate::ops::sample_context()).unwrap();
        let left = html.find('\u{F8F0}').map(|i| html[i.saturating_sub(200)..].chars().take(300).collect::<String>());
        assert!(html.contains("lang=\"bo\"") && left.is_none(), "{name}: {left:?}");
    }
}
both!(tibetan_pages_are_bilingual_both, super::tibetan_pages_are_bilingual);

/// `[i18n] locales` decides what is offered: a language left out is never
/// chosen, the switch does not list it, discovery does not name it.
async fn locale_list_is_configuration(b: Backend) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = temp_dir();
    let mut config = config_for(&b, port, &dir).await;
    config.i18n.locales = vec!["bo".into(), "zh-CN".into()];
    config.default_locale = "bo".into();
    let app = spawn_with(config, listener, dir).await;
    let html = api().get(app.url("/login")).header("accept-language", "en").send().await.unwrap();
    let html = html.text().await.unwrap();
    assert!(html.contains("<html lang=\"bo\">"), "English is not offered; the default is Tibetan");
    assert!(html.contains("id=\"lang-zh\"") && !html.contains("id=\"lang-en\""));
    let browser = Browser::new();
    browser.http.get(app.url("/lang?to=en&back=%2Flogin")).send().await.unwrap();
    let html = browser.http.get(app.url("/login")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("<html lang=\"bo\">"), "switching to a language not offered keeps the default");
    let d = json(api().get(app.url("/.well-known/openid-configuration")).send().await.unwrap()).await;
    assert_eq!(d["ui_locales_supported"], serde_json::json!(["bo", "zh-CN"]));
}
both!(locale_list_is_configuration_both, super::locale_list_is_configuration);

#[test]
fn the_locale_config_is_checked() {
    use idp::config::Config;
    let load = |toml: &str| Config::from_toml(toml, &[]);
    let c = load("[i18n]\nlocales = [\"zh-CN\", \"bo\"]\ndefault = \"bo\"\n").unwrap();
    assert_eq!(c.default_locale, "bo");
    assert_eq!(c.i18n.locales, ["zh-CN", "bo"]);
    let env = [("IDP_I18N__LOCALES".to_string(), "zh-CN,en".to_string())];
    assert_eq!(Config::from_toml("", &env).unwrap().i18n.locales, ["zh-CN", "en"]);
    let err = |toml: &str| load(toml).unwrap_err().to_string();
    assert!(err("[i18n]\nlocales = [\"fr\"]\n").contains("i18n.locales"));
    assert!(err("[i18n]\nlocales = []\n").contains("i18n.locales"));
    assert!(err("[i18n]\nlocales = [\"en\", \"en\"]\n").contains("twice"));
    assert!(err("[i18n]\nlocales = [\"en\"]\n").contains("default_locale"), "zh-CN default not offered");
    assert!(err("[i18n]\nlocales = [\"en\"]\ndefault = \"bo\"\n").contains("i18n.default"));
    assert!(err("theme = \"neon\"\n").contains("theme"));
}

/// The plain "gov" theme: its own colours and header/footer partials, every
/// other template from the default theme.
async fn gov_theme_serves_its_css_and_pages(b: Backend) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = temp_dir();
    let mut config = config_for(&b, port, &dir).await;
    config.theme = "gov".into();
    let app = spawn_with(config, listener, dir).await;
    let res = api().get(app.url("/static/theme.css")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/css"));
    let css = res.text().await.unwrap();
    assert!(css.contains("\"gov\"") && css.contains("--brand: #1d4e89"), "the gov palette");
    let shared = api().get(app.url("/static/style.css")).send().await.unwrap().text().await.unwrap();
    assert!(shared.contains("Noto Sans Tibetan"), "the layout falls back to the default theme's");
    let html = api().get(app.url("/login")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("href=\"/static/theme.css\""));
    assert!(html.contains("class=\"brand-sub\"") && html.contains("class=\"foot gov-foot\""), "gov partials");
    assert!(html.contains("id=\"username\""), "the default login form");
    for name in app.state.pages.template_names() {
        for lang in &app.state.config.i18n.locales {
            let html = app.state.pages.render(name, lang, crate::ops::sample_context()).unwrap();
            assert!(html.contains("gov-foot"), "{name} {lang}");
        }
    }
    // The default theme has neither.
    let other = spawn(Backend::Sqlite).await;
    let html = api().get(other.url("/login")).send().await.unwrap().text().await.unwrap();
    assert!(!html.contains("gov-foot") && html.contains("id=\"frame-footer\""));
}
both!(gov_theme_both, super::gov_theme_serves_its_css_and_pages);
