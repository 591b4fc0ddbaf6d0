//! HTTP adapter for a real verification provider.
//!
//! Each check is one JSON POST to `{url}/{check}` (`id`, `face`,
//! `bank_card`) with headers `X-Idp-Key-Id`, `X-Idp-Timestamp` (Unix
//! seconds) and `X-Idp-Signature` = hex HMAC-SHA-256 of
//! `"{timestamp}.{body}"` under `verifier.key`. The body carries a
//! `request_id` that stays the same across retries, so a provider that
//! deduplicates never bills or applies an outcome twice.
//! The answer is `{"result": "pass" | "mismatch" | …, "reference": "…"}`.
//! Timeouts and 5xx are retried with backoff; after `breaker_failures`
//! consecutive failures the circuit opens for `breaker_cooldown_ms` and
//! calls fail fast instead of piling up behind a dead provider. After the
//! cool-down exactly one call goes through as a probe (half-open); the
//! others keep failing fast until it succeeds (closed) or fails (open for
//! another cool-down), so a recovering provider is not hit by the backlog.
use super::assertion;
use super::{
    BankCardCheck, FaceSample, IdentityVerifier, InPersonClaims, Outcome, Verdict, VerifierConfig, VerifierError,
    document_json,
};
use crate::clock::Clock;
use crate::crypto::jws::PublicKey;
use crate::domain::identity::documents::Document;
use crate::net::Traced;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, Ordering};
use std::time::Duration;

pub struct HttpVerifier {
    http: reqwest::Client,
    url: String,
    key_id: String,
    key: Vec<u8>,
    retries: u32,
    breaker: Breaker,
    reader: Option<(PublicKey, String)>,
}

/// Consecutive-failure circuit breaker, in process and lock-free. Closed
/// while `open_until_ms` is 0; open until that time; after it, half-open:
/// the one caller that wins `probing` is let through.
struct Breaker {
    /// The provider's clock (tests move it past the cool-down).
    clock: Clock,
    threshold: u32,
    cooldown_ms: i64,
    failures: AtomicU32,
    open_until_ms: AtomicI64,
    probing: AtomicBool,
}

/// Leave to call the provider; its outcome must be reported. A probe that
/// is dropped unreported (the request was cancelled) counts as failed, or
/// the circuit would stay half-open with no probe forever.
struct Pass<'a> {
    breaker: &'a Breaker,
    probe: bool,
    settled: bool,
}

impl Breaker {
    fn new(threshold: u32, cooldown_ms: i64, clock: Clock) -> Self {
        Self {
            clock,
            threshold: threshold.max(1),
            cooldown_ms,
            failures: AtomicU32::new(0),
            open_until_ms: AtomicI64::new(0),
            probing: AtomicBool::new(false),
        }
    }

    /// `None`: fail fast (open, or half-open with a probe in flight).
    fn admit(&self, now: i64) -> Option<Pass<'_>> {
        let until = self.open_until_ms.load(Ordering::SeqCst);
        if until == 0 {
            return Some(Pass { breaker: self, probe: false, settled: false });
        }
        if until > now {
            return None;
        }
        self.probing.compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst).ok()?;
        Some(Pass { breaker: self, probe: true, settled: false })
    }

    fn open(&self, now: i64) {
        // Stored before the probe is released, so no caller sees the
        // circuit half-open with a free probe in between.
        self.open_until_ms.store(now + self.cooldown_ms, Ordering::SeqCst);
    }
}

impl Pass<'_> {
    fn succeeded(mut self) {
        self.settled = true;
        let b = self.breaker;
        b.failures.store(0, Ordering::SeqCst);
        b.open_until_ms.store(0, Ordering::SeqCst);
        if self.probe {
            b.probing.store(false, Ordering::SeqCst);
        }
    }

    fn failed(mut self, now: i64) {
        self.settled = true;
        self.record_failure(now);
    }

    fn record_failure(&self, now: i64) {
        let b = self.breaker;
        let n = b.failures.fetch_add(1, Ordering::SeqCst) + 1;
        if self.probe || n >= b.threshold {
            b.open(now);
        }
        if self.probe {
            b.probing.store(false, Ordering::SeqCst);
        }
    }
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        if !self.settled && self.probe {
            self.record_failure(self.breaker.clock.now_millis());
        }
    }
}

#[derive(Deserialize)]
struct Answer {
    result: String,
    #[serde(default)]
    reference: String,
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
    pub fn new(cfg: &VerifierConfig, clock: Clock) -> anyhow::Result<Self> {
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
            breaker: Breaker::new(cfg.breaker_failures, cfg.breaker_cooldown_ms as i64, clock),
            reader,
        })
    }

    async fn call(&self, check: &str, mut body: serde_json::Value) -> Result<Verdict, VerifierError> {
        let Some(pass) = self.breaker.admit(self.breaker.clock.now_millis()) else {
            return Err(VerifierError::CircuitOpen);
        };
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
            let ts = self.breaker.clock.now();
            let sent = self
                .http
                .post(&url)
                .header("content-type", "application/json")
                .header("x-idp-key-id", &self.key_id)
                .header("x-idp-timestamp", ts.to_string())
                .header("x-idp-signature", signature(&self.key, ts, &body))
                .body(body.clone())
                .traced()
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => {
                    let answer: Answer = match r.json().await {
                        Ok(a) => a,
                        Err(e) => {
                            // A garbled answer is not retried: the provider may
                            // have acted on the request.
                            pass.failed(self.breaker.clock.now_millis());
                            return Err(VerifierError::Unavailable(format!("bad answer: {e}")));
                        }
                    };
                    let Some(outcome) = Outcome::parse(&answer.result) else {
                        pass.failed(self.breaker.clock.now_millis());
                        return Err(VerifierError::Unavailable(format!("unknown result `{}`", answer.result)));
                    };
                    pass.succeeded();
                    return Ok(Verdict { outcome, reference: answer.reference });
                }
                Ok(r) if r.status().is_server_error() => last = VerifierError::Unavailable(r.status().to_string()),
                Ok(r) => {
                    // 4xx: our request is wrong (or the signature); retrying cannot help.
                    pass.failed(self.breaker.clock.now_millis());
                    return Err(VerifierError::Unavailable(r.status().to_string()));
                }
                Err(e) if e.is_timeout() => last = VerifierError::Timeout,
                Err(e) => last = VerifierError::Unavailable(e.to_string()),
            }
        }
        pass.failed(self.breaker.clock.now_millis());
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
    use super::Breaker;
    use crate::clock::Clock;

    #[test]
    fn half_open_lets_one_probe_through() {
        let b = Breaker::new(2, 1000, Clock::default());
        b.admit(0).unwrap().failed(0);
        assert!(b.admit(1).is_some(), "one failure of two keeps it closed");
        b.admit(1).unwrap().failed(1);
        assert!(b.admit(1000).is_none(), "open during the cool-down");
        let probe = b.admit(1001).unwrap();
        assert!(b.admit(1002).is_none(), "a probe is in flight: the rest fail fast");
        probe.failed(1003);
        assert!(b.admit(1500).is_none(), "a failed probe opens it again for a cool-down");
        let probe = b.admit(2003).unwrap();
        assert!(b.admit(2004).is_none());
        probe.succeeded();
        assert!(b.admit(2005).is_some() && b.admit(2005).is_some(), "a good probe closes it");
    }

    #[test]
    fn a_cancelled_probe_counts_as_failed() {
        let b = Breaker::new(1, 1000, Clock::default());
        b.admit(0).unwrap().failed(0);
        drop(b.admit(1000).unwrap());
        let now = b.clock.now_millis();
        assert!(b.admit(now).is_none(), "opened again, not stuck half-open");
        assert!(b.admit(now + 2000).is_some(), "and probed after the next cool-down");
    }

    #[test]
    fn signature_is_hex_hmac() {
        let s = super::signature(b"k", 1, "{}");
        assert_eq!(s.len(), 64);
        assert_ne!(s, super::signature(b"k", 2, "{}"));
    }
}
