//! Status records and the colour rules (E1): an authorised data source
//! pushes records about a person (or an enterprise) — a status and a reason
//! — and the colour is computed from the latest record by configurable
//! rules, so the history stays and the reason is shown. Nucleic-acid results
//! (E2) are pushed the same way by a lab source.
use idp_plugin_sdk::{Host, Value, json};
use serde::{Deserialize, Serialize};

/// A code's colour. Serialised as its lower-case name, the strings rules,
/// API answers, pages and issuers' tokens have always used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Colour {
    Green,
    Yellow,
    Red,
}

impl Colour {
    pub const ALL: [Colour; 3] = [Colour::Green, Colour::Yellow, Colour::Red];

    pub fn as_str(self) -> &'static str {
        match self {
            Colour::Green => "green",
            Colour::Yellow => "yellow",
            Colour::Red => "red",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl std::fmt::Display for Colour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One rule: records with `status` make the code `colour`, for `days` after
/// the record when set (then the code is green again).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Rule {
    pub status: String,
    pub colour: Colour,
    #[serde(default)]
    pub days: Option<i64>,
}

/// The rules when neither the settings nor an administrator set others.
pub fn default_rules() -> Vec<Rule> {
    let r = |status: &str, colour: Colour, days: Option<i64>| Rule { status: status.into(), colour, days };
    vec![
        r("confirmed", Colour::Red, None),
        r("close_contact", Colour::Red, Some(14)),
        r("secondary_contact", Colour::Yellow, Some(7)),
        r("risk_area", Colour::Yellow, Some(7)),
        r("cleared", Colour::Green, None),
    ]
}

/// A rule as an administrator or the settings send it: the colour is read
/// as a string first so an unknown one gets the rule's own message, not a
/// serde error.
#[derive(Deserialize)]
struct RuleInput {
    status: String,
    colour: String,
    #[serde(default)]
    days: Option<i64>,
}

pub fn parse_rules(v: &Value) -> Result<Vec<Rule>, String> {
    let input: Vec<RuleInput> = serde_json::from_value(v.clone()).map_err(|e| format!("rules: {e}"))?;
    input
        .into_iter()
        .map(|r| match Colour::parse(&r.colour).filter(|_| valid_status(&r.status)) {
            Some(colour) => Ok(Rule { status: r.status, colour, days: r.days }),
            None => {
                let names = Colour::ALL.map(Colour::as_str);
                Err(format!("rule for {:?}: colour must be one of {names:?}", r.status))
            }
        })
        .collect()
}

fn valid_status(s: &str) -> bool {
    !s.is_empty() && s.len() <= 40 && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The rules in force: an administrator's (kv `rules`), else the configured.
pub fn rules(host: &Host, configured: &[Rule]) -> Result<Vec<Rule>, String> {
    match host.kv_get("rules")? {
        Some(raw) => serde_json::from_str(&raw).map_err(|e| e.to_string()),
        None => Ok(configured.to_vec()),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub status: String,
    pub reason: String,
    /// The client id of the data source that pushed it.
    pub source: String,
    pub at: i64,
}

/// `key` is an ID number or a credit code; 18 characters of [0-9A-Z].
pub fn valid_key(key: &str) -> bool {
    key.len() == 18 && key.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
}

/// `prefix/key/[order-]sNNN`: the per-subject sequence (an atomic counter
/// in the database) orders a subject's records on every node, the same
/// second included.
fn record_key(host: &Host, prefix: &str, key: &str, order: Option<i64>) -> Result<String, String> {
    let seq = host.kv_incr(&format!("seq/{prefix}/{key}"), 1, None)?;
    Ok(match order {
        Some(o) => format!("{prefix}/{key}/{o:012}-{}", crate::util::seq_key(seq)),
        None => format!("{prefix}/{key}/{}", crate::util::seq_key(seq)),
    })
}

pub fn push(
    host: &Host,
    key: &str,
    status: &str,
    reason: &str,
    source: &str,
) -> Result<Result<Record, String>, String> {
    if !valid_key(key) || !valid_status(status) || reason.chars().count() > 200 {
        return Ok(Err("subject must be an 18-character ID or credit code, status [a-z0-9_]".into()));
    }
    let now = host.now();
    let rec = Record { status: status.into(), reason: reason.into(), source: source.into(), at: now };
    let raw = serde_json::to_string(&rec).map_err(|e| e.to_string())?;
    host.kv_put(&record_key(host, "status", key, None)?, &raw, None)?;
    Ok(Ok(rec))
}

/// Every record about `key`, oldest first.
pub fn history(host: &Host, key: &str) -> Result<Vec<Record>, String> {
    Ok(host
        .kv_list(&format!("status/{key}/"))?
        .into_iter()
        .filter_map(|(_, v)| serde_json::from_str(&v).ok())
        .collect())
}

/// The colour now and the record that decided it (none: green by default).
pub fn colour(host: &Host, rules: &[Rule], key: &str) -> Result<(Colour, Option<Record>), String> {
    let now = host.now();
    let Some(last) = history(host, key)?.pop() else {
        return Ok((Colour::Green, None));
    };
    let colour = match rules.iter().find(|r| r.status == last.status) {
        Some(r) if r.days.is_none_or(|d| now < last.at + d * 86_400) => r.colour,
        _ => Colour::Green,
    };
    Ok((colour, Some(last)))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabResult {
    /// `negative` or `positive`.
    pub result: String,
    pub sampled_at: i64,
    pub lab: String,
    pub source: String,
    pub at: i64,
}

pub fn push_lab(host: &Host, body: &Value, source: &str) -> Result<Result<LabResult, String>, String> {
    let s = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let key = s("id_number");
    let result = s("result");
    let now = host.now();
    let sampled_at = body.get("sampled_at").and_then(Value::as_i64).unwrap_or(now).clamp(0, now + 86_400);
    if !valid_key(&key) || !matches!(result.as_str(), "negative" | "positive") || s("lab").chars().count() > 100 {
        return Ok(Err("id_number (18 characters) and result negative|positive are required".into()));
    }
    let rec = LabResult { result, sampled_at, lab: s("lab"), source: source.into(), at: now };
    let raw = serde_json::to_string(&rec).map_err(|e| e.to_string())?;
    host.kv_put(&record_key(host, "lab", &key, Some(sampled_at))?, &raw, None)?;
    Ok(Ok(rec))
}

/// Nucleic-acid results of `key`, newest first.
pub fn lab_results(host: &Host, key: &str) -> Result<Vec<LabResult>, String> {
    let mut out: Vec<LabResult> =
        host.kv_list(&format!("lab/{key}/"))?.into_iter().filter_map(|(_, v)| serde_json::from_str(&v).ok()).collect();
    out.reverse();
    Ok(out)
}

pub fn record_json(r: &Record) -> Value {
    json!({ "status": r.status, "reason": r.reason, "at": r.at })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_keep_their_json_strings() {
        for c in Colour::ALL {
            assert_eq!(serde_json::to_value(c).ok(), Some(json!(c.as_str())));
            assert_eq!(Colour::parse(c.as_str()), Some(c));
        }
        // Rules stored before the type read back the same.
        let stored = r#"[{"status":"confirmed","colour":"red","days":null}]"#;
        let rules: Vec<Rule> = serde_json::from_str(stored).unwrap_or_default();
        assert_eq!(rules, vec![Rule { status: "confirmed".into(), colour: Colour::Red, days: None }]);
    }

    #[test]
    fn an_unknown_colour_names_the_rule() {
        let err = parse_rules(&json!([{ "status": "x", "colour": "blue" }])).err().unwrap_or_default();
        assert_eq!(err, r#"rule for "x": colour must be one of ["green", "yellow", "red"]"#);
        assert!(parse_rules(&json!([{ "status": "x", "colour": "red", "days": 3 }])).is_ok());
    }
}
