//! Plugin texts in locale files (JSON objects of key → text), so user-facing
//! words live in data, not in logic. zh-CN is the default.
use serde_json::{Map, Value};

pub struct Texts {
    zh_cn: Map<String, Value>,
    en: Map<String, Value>,
}

impl Texts {
    /// Parses the two locale files; a malformed file yields an empty table
    /// (keys then show as themselves, which a test catches).
    pub fn new(zh_cn_json: &str, en_json: &str) -> Self {
        let parse = |s: &str| serde_json::from_str::<Map<String, Value>>(s).unwrap_or_default();
        Self { zh_cn: parse(zh_cn_json), en: parse(en_json) }
    }

    pub fn get<'a>(&'a self, locale: &str, key: &'a str) -> &'a str {
        let table = if locale == "en" { &self.en } else { &self.zh_cn };
        table.get(key).and_then(Value::as_str).unwrap_or(key)
    }

    /// Keys present in one locale but not the other.
    pub fn missing(&self) -> Vec<String> {
        let a = self.zh_cn.keys().filter(|k| !self.en.contains_key(*k));
        let b = self.en.keys().filter(|k| !self.zh_cn.contains_key(*k));
        a.chain(b).cloned().collect()
    }
}
