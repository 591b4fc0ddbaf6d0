//! Plugin texts in locale files (JSON objects of key → text), so user-facing
//! words live in data, not in logic. zh-CN is the default; a locale without
//! a key (or without a file) shows the zh-CN text.
//!
//! In a bilingual locale (Tibetan, with Chinese beside it: see
//! [`crate::bilingual`]) [`Texts::get`] gives each text in both languages,
//! for pages; [`Texts::plain`] gives one language, for anything else (JSON,
//! CSV, images).
use crate::bilingual;
use serde_json::{Map, Value};

pub struct Texts {
    zh_cn: Map<String, Value>,
    en: Map<String, Value>,
    /// Further locales, e.g. `("bo", …)` for Tibetan.
    others: Vec<(String, Map<String, Value>)>,
    /// The further locales that are bilingual, each text paired with the
    /// companion's (a key the locale lacks is paired from zh-CN's).
    paired: Vec<(String, Map<String, Value>)>,
}

fn parse(s: &str) -> Map<String, Value> {
    serde_json::from_str::<Map<String, Value>>(s).unwrap_or_default()
}

impl Texts {
    /// Parses the two locale files; a malformed file yields an empty table
    /// (keys then show as themselves, which a test catches).
    pub fn new(zh_cn_json: &str, en_json: &str) -> Self {
        Self { zh_cn: parse(zh_cn_json), en: parse(en_json), others: Vec::new(), paired: Vec::new() }
    }

    /// Adds a further locale's file: `Texts::new(ZH, EN).with("bo", BO)`.
    pub fn with(mut self, locale: &str, json: &str) -> Self {
        let table = parse(json);
        if let Some(beside) = bilingual::companion(locale) {
            let paired = self
                .zh_cn
                .keys()
                .chain(table.keys())
                .map(|k| {
                    let own = table.get(k).or_else(|| self.zh_cn.get(k)).and_then(Value::as_str).unwrap_or(k);
                    let other = self.plain(beside, k);
                    (k.clone(), Value::String(bilingual::pair(own, other)))
                })
                .collect();
            self.paired.push((locale.to_string(), paired));
        }
        self.others.push((locale.to_string(), table));
        self
    }

    /// A text for a page: in a bilingual locale, in both languages (the
    /// host shows them side by side). Never for JSON, CSV or images.
    pub fn get<'a>(&'a self, locale: &str, key: &'a str) -> &'a str {
        match self.paired.iter().find(|(l, _)| l == locale) {
            Some((_, t)) => t.get(key).and_then(Value::as_str).unwrap_or(key),
            None => self.plain(locale, key),
        }
    }

    /// A text in one language (the locale's own), for anything but a page.
    pub fn plain<'a>(&'a self, locale: &str, key: &'a str) -> &'a str {
        let table = match locale {
            "en" => Some(&self.en),
            "zh-CN" => None,
            other => self.others.iter().find(|(l, _)| l == other).map(|(_, t)| t),
        };
        table.and_then(|t| t.get(key)).or_else(|| self.zh_cn.get(key)).and_then(Value::as_str).unwrap_or(key)
    }

    /// Keys present in one locale but not in zh-CN, or in zh-CN but not in
    /// another locale (`locale: key` for the further locales).
    pub fn missing(&self) -> Vec<String> {
        let a = self.zh_cn.keys().filter(|k| !self.en.contains_key(*k)).cloned();
        let b = self.en.keys().filter(|k| !self.zh_cn.contains_key(*k)).cloned();
        let mut out: Vec<String> = a.chain(b).collect();
        for (locale, table) in &self.others {
            out.extend(self.zh_cn.keys().filter(|k| !table.contains_key(*k)).map(|k| format!("{locale}: {k}")));
            out.extend(table.keys().filter(|k| !self.zh_cn.contains_key(*k)).map(|k| format!("{locale}: {k}")));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tibetan_page_texts_carry_the_chinese() {
        let t = Texts::new(r#"{"a":"甲","b":"乙"}"#, r#"{"a":"A","b":"B"}"#).with("bo", r#"{"a":"ཀ"}"#);
        assert_eq!(t.get("bo", "a"), bilingual::pair("ཀ", "甲"));
        assert_eq!(t.plain("bo", "a"), "ཀ");
        assert_eq!(t.get("bo", "b"), "乙", "a key Tibetan lacks shows the Chinese once");
        assert_eq!(t.get("en", "a"), "A");
        assert_eq!(t.get("zh-CN", "a"), "甲");
        assert_eq!(t.get("bo", "zzz"), "zzz");
        assert_eq!(t.missing(), ["bo: b"]);
    }
}
