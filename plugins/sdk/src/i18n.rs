//! Plugin texts in locale files (JSON objects of key → text), so user-facing
//! words live in data, not in logic. zh-CN is the default; a locale without
//! a key (or without a file) shows the zh-CN text.
use serde_json::{Map, Value};

pub struct Texts {
    zh_cn: Map<String, Value>,
    en: Map<String, Value>,
    /// Further locales, e.g. `("bo", …)` for Tibetan.
    others: Vec<(String, Map<String, Value>)>,
}

fn parse(s: &str) -> Map<String, Value> {
    serde_json::from_str::<Map<String, Value>>(s).unwrap_or_default()
}

impl Texts {
    /// Parses the two locale files; a malformed file yields an empty table
    /// (keys then show as themselves, which a test catches).
    pub fn new(zh_cn_json: &str, en_json: &str) -> Self {
        Self { zh_cn: parse(zh_cn_json), en: parse(en_json), others: Vec::new() }
    }

    /// Adds a further locale's file: `Texts::new(ZH, EN).with("bo", BO)`.
    pub fn with(mut self, locale: &str, json: &str) -> Self {
        self.others.push((locale.to_string(), parse(json)));
        self
    }

    pub fn get<'a>(&'a self, locale: &str, key: &'a str) -> &'a str {
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
