//! The identity verifier port (B2–B4): the authority's real-name check,
//! face liveness + comparison, bank-card four elements, and in-person
//! (chip reader / certificate authority) assertions. Two adapters: a
//! sandbox driven by a fixture of test identities, and an HTTP client for a
//! real provider with signed requests, retries and a circuit breaker.
use crate::domain::identity::documents::{Document, DocumentNumber, PersonName, Validity};
use crate::domain::identity::users::PhoneNumber;
use crate::telemetry::{self, Check, Count};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::sync::Arc;

pub mod assertion;
pub mod http;
pub mod sandbox;

/// What the authority, bank or reader answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    /// Name, number or dates do not match a record (or there is none).
    Mismatch,
    /// The authority cannot match a rare character in the name (002 §2.4).
    RareCharacter,
    /// The authority knows the document as expired, lost or replaced.
    Expired,
    Deceased,
    FaceMismatch,
    LivenessFailed,
    /// Bank card checks accept debit cards only (002 §1.3.2.2).
    CreditCard,
    /// A signed in-person assertion that does not verify.
    BadAssertion,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Mismatch => "mismatch",
            Outcome::RareCharacter => "rare_character",
            Outcome::Expired => "expired",
            Outcome::Deceased => "deceased",
            Outcome::FaceMismatch => "face_mismatch",
            Outcome::LivenessFailed => "liveness_failed",
            Outcome::CreditCard => "credit_card",
            Outcome::BadAssertion => "bad_assertion",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::from(s)).ok()
    }
}

/// An answer with the provider's reference for later inquiries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub outcome: Outcome,
    pub reference: String,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum VerifierError {
    #[error("verifier timed out")]
    Timeout,
    #[error("verifier unavailable: {0}")]
    Unavailable(String),
    /// Too many failures in a row: refused without calling for a while.
    #[error("verifier circuit open")]
    CircuitOpen,
}

/// A face sample from the app's capture. Only passed through to the
/// verifier, never stored (B3).
pub struct FaceSample(Vec<u8>);

impl FaceSample {
    pub const MAX_BYTES: usize = 2 * 1024 * 1024;
    pub fn from_base64(text: &str) -> Option<Self> {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD.decode(text.trim()).ok()?;
        Self::new(bytes)
    }
    pub fn new(bytes: Vec<u8>) -> Option<Self> {
        (!bytes.is_empty() && bytes.len() <= Self::MAX_BYTES).then_some(Self(bytes))
    }
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// A bank card number: 16–19 digits with a valid Luhn check digit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankCardNumber(String);

impl BankCardNumber {
    pub fn parse(raw: &str) -> Option<Self> {
        let v: String = raw.chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
        if !(16..=19).contains(&v.len()) || !v.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let sum: u32 = v
            .bytes()
            .rev()
            .enumerate()
            .map(|(i, b)| {
                let d = u32::from(b - b'0');
                if i % 2 == 1 {
                    let d2 = d * 2;
                    if d2 > 9 { d2 - 9 } else { d2 }
                } else {
                    d
                }
            })
            .sum();
        sum.is_multiple_of(10).then_some(Self(v))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// `6222 **** **** 3446`-style: first four and last four.
    pub fn masked(&self) -> String {
        format!("{}****{}", &self.0[..4], &self.0[self.0.len() - 4..])
    }
}

/// The four elements (002 §1.3.2.2): name, ID number, debit card, and
/// the phone the bank has on file.
pub struct BankCardCheck {
    pub name: PersonName,
    pub id_number: DocumentNumber,
    pub card: BankCardNumber,
    pub phone: PhoneNumber,
}

/// What a verified in-person assertion attests.
#[derive(Debug, Clone)]
pub struct InPersonClaims {
    pub issuer: String,
    pub jti: String,
    pub expires_at: i64,
    pub number: DocumentNumber,
    pub name: PersonName,
    pub validity: Validity,
    pub place: String,
}

pub trait IdentityVerifier: Send + Sync {
    /// Name + number + validity against the authority (B2).
    fn check_id(&self, doc: &Document) -> impl Future<Output = Result<Verdict, VerifierError>> + Send;
    /// Liveness + comparison with the authority photo of `doc` (B3).
    fn check_face(
        &self,
        doc: &Document,
        sample: &FaceSample,
    ) -> impl Future<Output = Result<Verdict, VerifierError>> + Send;
    /// Bank card four elements, debit cards only (B3).
    fn check_bank_card(&self, card: &BankCardCheck) -> impl Future<Output = Result<Verdict, VerifierError>> + Send;
    /// A signed assertion from an ID-chip reader or CA (B4); `Err(Outcome)`
    /// inside `Ok` when it does not verify.
    fn check_in_person(
        &self,
        assertion: &str,
        now: i64,
    ) -> impl Future<Output = Result<Result<InPersonClaims, Outcome>, VerifierError>> + Send;
}

/// `[verifier]` configuration (docs/identity.md, "Verifier").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VerifierConfig {
    /// `sandbox` (fixture identities) or `http`.
    pub kind: String,
    /// A fixture file replacing the built-in sandbox identities.
    pub fixture: Option<std::path::PathBuf>,
    /// Simulated latency of the sandbox, uniformly in [min, max] ms.
    pub latency_min_ms: u64,
    pub latency_max_ms: u64,
    /// Base URL of the provider; checks are POSTed to `{url}/{check}`.
    pub url: Option<String>,
    pub key_id: String,
    /// Shared secret signing each request (HMAC-SHA-256).
    pub key: Option<String>,
    pub timeout_ms: u64,
    /// Further attempts after a timeout or 5xx (same request id).
    pub retries: u32,
    /// Consecutive failures that open the circuit, and for how long.
    pub breaker_failures: u32,
    pub breaker_cooldown_ms: u64,
    /// Public JWK (JSON, EC P-256) of the chip reader / CA signing
    /// in-person assertions, and its `iss`. The sandbox defaults to the
    /// fixture's key.
    pub in_person_jwk: Option<String>,
    pub in_person_issuer: Option<String>,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        Self {
            kind: "sandbox".into(),
            fixture: None,
            latency_min_ms: 50,
            latency_max_ms: 150,
            url: None,
            key_id: "idp".into(),
            key: None,
            timeout_ms: 5000,
            retries: 2,
            breaker_failures: 5,
            breaker_cooldown_ms: 30_000,
            in_person_jwk: None,
            in_person_issuer: None,
        }
    }
}

impl VerifierConfig {
    /// Problems as (key, message) for `Config::validate`.
    pub fn problem(&self) -> Option<(&'static str, String)> {
        match self.kind.as_str() {
            "sandbox" => {}
            "http" if self.url.is_none() => return Some(("verifier.url", "required when kind = \"http\"".into())),
            "http" if self.key.as_deref().is_none_or(str::is_empty) => {
                return Some(("verifier.key", "required when kind = \"http\" (signs requests)".into()));
            }
            "http" => {}
            other => return Some(("verifier.kind", format!("`{other}`: allowed sandbox, http"))),
        }
        if self.latency_min_ms > self.latency_max_ms {
            return Some(("verifier.latency_min_ms", "must not exceed latency_max_ms".into()));
        }
        if self.timeout_ms == 0 || self.timeout_ms > 60_000 {
            return Some(("verifier.timeout_ms", "between 1 and 60000".into()));
        }
        if self.retries > 5 {
            return Some(("verifier.retries", "at most 5".into()));
        }
        if let Some(jwk) = &self.in_person_jwk
            && assertion::public_key(jwk).is_none()
        {
            return Some(("verifier.in_person_jwk", "not a public EC P-256 JWK".into()));
        }
        None
    }
}

/// The configured adapter.
#[derive(Clone)]
pub enum Verifier {
    Sandbox(Arc<sandbox::Sandbox>),
    Http(Arc<http::HttpVerifier>),
}

impl Verifier {
    /// `data_dir` keeps the sandbox reader's key, generated on first start.
    /// `clock` drives the HTTP adapter's circuit breaker.
    pub fn from_config(
        cfg: &VerifierConfig,
        data_dir: &std::path::Path,
        clock: crate::clock::Clock,
    ) -> anyhow::Result<Self> {
        if let Some((key, message)) = cfg.problem() {
            anyhow::bail!("{key}: {message}");
        }
        match cfg.kind.as_str() {
            "http" => Ok(Verifier::Http(Arc::new(http::HttpVerifier::new(cfg, clock)?))),
            _ => Ok(Verifier::Sandbox(Arc::new(sandbox::Sandbox::from_config(cfg, data_dir)?))),
        }
    }
}

impl IdentityVerifier for Verifier {
    async fn check_id(&self, doc: &Document) -> Result<Verdict, VerifierError> {
        let verdict = match self {
            Verifier::Sandbox(s) => s.check_id(doc).await,
            Verifier::Http(h) => h.check_id(doc).await,
        };
        counted(Check::Id, verdict)
    }
    async fn check_face(&self, doc: &Document, sample: &FaceSample) -> Result<Verdict, VerifierError> {
        let verdict = match self {
            Verifier::Sandbox(s) => s.check_face(doc, sample).await,
            Verifier::Http(h) => h.check_face(doc, sample).await,
        };
        counted(Check::Face, verdict)
    }
    async fn check_bank_card(&self, card: &BankCardCheck) -> Result<Verdict, VerifierError> {
        let verdict = match self {
            Verifier::Sandbox(s) => s.check_bank_card(card).await,
            Verifier::Http(h) => h.check_bank_card(card).await,
        };
        counted(Check::BankCard, verdict)
    }
    async fn check_in_person(
        &self,
        assertion: &str,
        now: i64,
    ) -> Result<Result<InPersonClaims, Outcome>, VerifierError> {
        let claims = match self {
            Verifier::Sandbox(s) => s.check_in_person(assertion, now).await,
            Verifier::Http(h) => h.check_in_person(assertion, now).await,
        };
        let outcome = match &claims {
            Ok(Ok(_)) => Outcome::Pass.as_str(),
            Ok(Err(o)) => o.as_str(),
            Err(e) => e.as_label(),
        };
        telemetry::count(Count::VerifierCall { check: Check::InPerson, outcome });
        claims
    }
}

/// Counts a verifier call by what it answered (every adapter, every caller).
fn counted(check: Check, verdict: Result<Verdict, VerifierError>) -> Result<Verdict, VerifierError> {
    let outcome = match &verdict {
        Ok(v) => v.outcome.as_str(),
        Err(e) => e.as_label(),
    };
    telemetry::count(Count::VerifierCall { check, outcome });
    verdict
}

impl VerifierError {
    /// The error's metric label.
    pub fn as_label(&self) -> &'static str {
        match self {
            VerifierError::Timeout => "timeout",
            VerifierError::Unavailable(_) => "unavailable",
            VerifierError::CircuitOpen => "circuit_open",
        }
    }
}

/// The document fields every adapter sends or compares.
pub(crate) fn document_json(doc: &Document) -> serde_json::Value {
    serde_json::json!({
        "doc_type": doc.kind().as_str(),
        "number": doc.number.as_str(),
        "name": doc.name.as_str(),
        "valid_from": doc.validity.start.to_string(),
        "valid_to": doc.validity.end.map(|d| d.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn luhn() {
        assert!(BankCardNumber::parse("6222 0202 0011 2233 446").is_some());
        assert!(BankCardNumber::parse("6222020200112233445").is_none());
        assert!(BankCardNumber::parse("1234").is_none());
        assert_eq!(BankCardNumber::parse("6222020200112233446").unwrap().masked(), "6222****3446");
    }
}
