//! HTTP adapter for a real verification provider.
//!
//! Each check is one JSON POST to `{url}/{check}` (`id`, `face`,
//! `bank_card`) with headers `X-Idp-Key-Id`, `X-Idp-Timestamp` (Unix
//! seconds) and `X-Idp-Signature` = hex HMAC-SHA-256 of
//! `"{timestamp}.{body}"` under `verifier.key`. The body carries a
//! `request_id` that stays the same across retries, so a provider that
//! deduplicates never bills or applies an outcome twice (SECURITY "Faults").
//! The answer is `{"result": "pass" | "mismatch" | …, "reference": "…"}`.
//! Timeouts and 5xx are retried with backoff; after `breaker_failures`
//! consecutive failures the circuit opens for `breaker_cooldown_ms` and
//! calls fail fast instead of piling up behind a dead provider.
use super::assertion;
use super::{
    BankCardCheck, FaceSample, IdentityVerifier, InPersonClaims, Outcome, Verdict, VerifierConfig, VerifierError,
    document_json,
};
use crate::crypto::jws::PublicKey;
use crate::domain::documents::Document;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::time::Duration;

pub struct HttpVerifier {
    http: reqwest::Client,
    url: String,
    key_id: String,
    key: Vec<u8>,
    retries: u32,
    breaker_failures: u32,
    breaker_cooldown_ms: i64,
    failures: AtomicU32,
    open_until_ms: AtomicI64,
    reader: Option<(PublicKey, String)>,
}

#[derive(Deserialize)]
struct Answer {
    result: String,
    #[serde(default)]
    reference: String,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The signature header value for a body sent at `timestamp`.
pub fn signature(key: &[u8], timestamp: i64, body: &str) -> String {
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(key) else { return String::new() };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

impl HttpVerifier {
    pub fn new(cfg: &VerifierConfig) -> anyhow::Result<Self> {
        let url = cfg.url.clone().ok_or_else(|| anyhow::anyhow!("verifier.url is required"))?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(cfg.timeout_ms))
            .connect_timeout(Duration::from_millis(cfg.timeout_ms))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let reader = match &cfg.in_person_jwk {
            Some(jwk) => Some((
                assertion::public_key(jwk).ok_or_else(|| anyhow::anyhow!("verifier.in_person_jwk: not a P-256 JWK"))?,
                cfg.in_person_issuer.clone().unwrap_or_default(),
            )),
            None => None,
        };
        Ok(Self {
            http,
            url: url.trim_end_matches('/').to_string(),
            key_id: cfg.key_id.clone(),
            key: cfg.key.clone().unwrap_or_default().into_bytes(),
            retries: cfg.retries,
            breaker_failures: cfg.breaker_failures.max(1),
            breaker_cooldown_ms: cfg.breaker_cooldown_ms as i64,
            failures: AtomicU32::new(0),
            open_until_ms: AtomicI64::new(0),
            reader,
        })
    }

    fn failed(&self) {
        let n = self.failures.fetch_add(1, Ordering::SeqCst) + 1;
        if n >= self.breaker_failures {
            self.open_until_ms.store(now_ms() + self.breaker_cooldown_ms, Ordering::SeqCst);
        }
    }

    async fn call(&self, check: &str, mut body: serde_json::Value) -> Result<Verdict, VerifierError> {
        if self.open_until_ms.load(Ordering::SeqCst) > now_ms() {
            return Err(VerifierError::CircuitOpen);
        }
        if let Some(map) = body.as_object_mut() {
            map.insert("request_id".into(), crate::crypto::random_token(16).into());
        }
        let body = body.to_string();
        let url = format!("{}/{check}", self.url);
        let mut last = VerifierError::Unavailable("no attempt".into());
        for attempt in 0..=self.retries {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(200 << (attempt - 1).min(4))).await;
            }
            let ts = crate::now();
            let sent = self
                .http
                .post(&url)
                .header("content-type", "application/json")
                .header("x-idp-key-id", &self.key_id)
                .header("x-idp-timestamp", ts.to_string())
                .header("x-idp-signature", signature(&self.key, ts, &body))
                .body(body.clone())
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => {
                    let answer: Answer = match r.json().await {
                        Ok(a) => a,
                        Err(e) => {
                            // A garbled answer is not retried: the provider may
                            // have acted on the request.
                            self.failed();
                            return Err(VerifierError::Unavailable(format!("bad answer: {e}")));
                        }
                    };
                    let Some(outcome) = Outcome::parse(&answer.result) else {
                        self.failed();
                        return Err(VerifierError::Unavailable(format!("unknown result `{}`", answer.result)));
                    };
                    self.failures.store(0, Ordering::SeqCst);
                    return Ok(Verdict { outcome, reference: answer.reference });
                }
                Ok(r) if r.status().is_server_error() => last = VerifierError::Unavailable(r.status().to_string()),
                Ok(r) => {
                    // 4xx: our request is wrong (or the signature); retrying cannot help.
                    self.failed();
                    return Err(VerifierError::Unavailable(r.status().to_string()));
                }
                Err(e) if e.is_timeout() => last = VerifierError::Timeout,
                Err(e) => last = VerifierError::Unavailable(e.to_string()),
            }
        }
        self.failed();
        Err(last)
    }
}

impl IdentityVerifier for HttpVerifier {
    async fn check_id(&self, doc: &Document) -> Result<Verdict, VerifierError> {
        self.call("id", document_json(doc)).await
    }

    async fn check_face(&self, doc: &Document, sample: &FaceSample) -> Result<Verdict, VerifierError> {
        use base64::Engine;
        let mut body = document_json(doc);
        if let Some(map) = body.as_object_mut() {
            map.insert("face".into(), base64::engine::general_purpose::STANDARD.encode(sample.bytes()).into());
        }
        self.call("face", body).await
    }

    async fn check_bank_card(&self, card: &BankCardCheck) -> Result<Verdict, VerifierError> {
        let body = serde_json::json!({
            "name": card.name.as_str(),
            "id_number": card.id_number.as_str(),
            "card_number": card.card.as_str(),
            "phone": card.phone.as_str(),
        });
        self.call("bank_card", body).await
    }

    async fn check_in_person(&self, token: &str, now: i64) -> Result<Result<InPersonClaims, Outcome>, VerifierError> {
        // Assertions are verified here with the reader's public key; the
        // provider is not asked (it may be the very CA that signed).
        match &self.reader {
            Some((key, issuer)) => Ok(assertion::verify(token, key, issuer, now)),
            None => Err(VerifierError::Unavailable("verifier.in_person_jwk not configured".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn signature_is_hex_hmac() {
        let s = super::signature(b"k", 1, "{}");
        assert_eq!(s.len(), 64);
        assert_ne!(s, super::signature(b"k", 2, "{}"));
    }
}
