//! The sandbox verifier: answers from a fixture of test identities
//! (`core/fixtures/sandbox-identities.toml`, compiled in; another file via
//! `verifier.fixture`) with a realistic delay, provider references, and
//! simulated failures (`timeout`, `unavailable`) for the error paths.
use super::assertion;
use super::{
    BankCardCheck, FaceSample, IdentityVerifier, InPersonClaims, Outcome, Verdict, VerifierConfig, VerifierError,
};
use crate::crypto::jws::{PrivateKey, PublicKey};
use crate::domain::identity::documents::Document;
use serde::Deserialize;
use std::time::Duration;

pub const BUILTIN_FIXTURE: &str = include_str!("../../../fixtures/sandbox-identities.toml");

#[derive(Debug, Deserialize)]
struct Fixture {
    #[serde(default)]
    in_person: ReaderName,
    #[serde(default)]
    identities: Vec<FixtureIdentity>,
    #[serde(default)]
    cards: Vec<FixtureCard>,
}

/// The sandbox chip reader's name. Its P-256 key is not in the fixture:
/// it is generated on first start into `data_dir/sandbox-reader.key`, so
/// no signing key ships with the code (a published key would let anyone
/// mint in-person assertions for a server left on the sandbox).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReaderName {
    issuer: String,
}

impl Default for ReaderName {
    fn default() -> Self {
        ReaderName { issuer: "sandbox-reader".into() }
    }
}

/// Where the sandbox reader keeps its private key (base64url `d`).
pub const READER_KEY_FILE: &str = "sandbox-reader.key";

fn new_reader_d() -> String {
    let key = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
    crate::crypto::b64url(&key.to_bytes())
}

#[derive(Debug, Deserialize)]
struct FixtureIdentity {
    name: String,
    doc_type: String,
    number: String,
    id: String,
    #[serde(default)]
    face: Option<String>,
}

#[derive(Debug, Deserialize)]
struct FixtureCard {
    number: String,
    kind: String,
    holder: String,
    phone: String,
}

pub struct Sandbox {
    fixture: Fixture,
    latency: (u64, u64),
    reader: PrivateKey,
    reader_key: PublicKey,
    reader_issuer: String,
}

impl Sandbox {
    pub fn from_config(cfg: &VerifierConfig, data_dir: &std::path::Path) -> anyhow::Result<Self> {
        let text = match &cfg.fixture {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("verifier.fixture {}: {e}", path.display()))?,
            None => BUILTIN_FIXTURE.to_string(),
        };
        let path = data_dir.join(READER_KEY_FILE);
        let d = crate::crypto::read_or_create_secret(&path, new_reader_d)
            .map_err(|e| anyhow::anyhow!("sandbox reader key {}: {e}", path.display()))?;
        let mut s = Self::with_reader(&text, &d)?;
        s.latency = (cfg.latency_min_ms, cfg.latency_max_ms);
        if let Some(jwk) = &cfg.in_person_jwk {
            s.reader_key =
                assertion::public_key(jwk).ok_or_else(|| anyhow::anyhow!("verifier.in_person_jwk: not a P-256 JWK"))?;
        }
        if let Some(iss) = &cfg.in_person_issuer {
            s.reader_issuer = iss.clone();
        }
        Ok(s)
    }

    /// A sandbox with a reader key of its own, made for this process.
    pub fn from_fixture(text: &str) -> anyhow::Result<Self> {
        Self::with_reader(text, &new_reader_d())
    }

    fn with_reader(text: &str, d: &str) -> anyhow::Result<Self> {
        let fixture: Fixture = toml::from_str(text).map_err(|e| anyhow::anyhow!("sandbox fixture: {e}"))?;
        let signing = crate::crypto::b64url_decode(d)
            .and_then(|bytes| p256::ecdsa::SigningKey::from_slice(&bytes).ok())
            .ok_or_else(|| anyhow::anyhow!("sandbox reader key: not a P-256 private key"))?;
        let reader_key = PublicKey::Es256(*signing.verifying_key());
        let reader_issuer = fixture.in_person.issuer.clone();
        Ok(Self { fixture, latency: (0, 0), reader: PrivateKey::Es256(signing), reader_key, reader_issuer })
    }

    /// Signs an in-person assertion as the sandbox reader would (tests,
    /// demos, `idp identity sandbox-assertion`). The `iss` is filled in.
    pub fn sign_assertion(&self, mut claims: serde_json::Value) -> String {
        if let Some(map) = claims.as_object_mut() {
            map.insert("iss".into(), self.reader_issuer.clone().into());
        }
        assertion::sign(&self.reader, &claims)
    }

    async fn delay(&self) {
        let (lo, hi) = self.latency;
        if hi == 0 {
            return;
        }
        let ms = if hi > lo { lo + rand::random::<u64>() % (hi - lo + 1) } else { lo };
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    fn reference() -> String {
        format!("SBX-{}", crate::crypto::random_token(9))
    }

    fn find(&self, doc: &Document) -> Option<&FixtureIdentity> {
        self.fixture.identities.iter().find(|i| i.doc_type == doc.kind().as_str() && i.number == doc.number.as_str())
    }

    fn verdict(outcome: Outcome) -> Result<Verdict, VerifierError> {
        Ok(Verdict { outcome, reference: Self::reference() })
    }

    /// The authority's answer about the document itself (shared by the ID
    /// and face checks: a face is compared with a known, live identity).
    fn id_answer(&self, doc: &Document) -> Result<Outcome, VerifierError> {
        if doc.name.has_rare_character() {
            return Ok(Outcome::RareCharacter);
        }
        let Some(found) = self.find(doc) else { return Ok(Outcome::Mismatch) };
        if found.name != doc.name.as_str() {
            return Ok(Outcome::Mismatch);
        }
        match found.id.as_str() {
            "timeout" => Err(VerifierError::Timeout),
            "unavailable" => Err(VerifierError::Unavailable("sandbox: simulated outage".into())),
            other => Ok(Outcome::parse(other).unwrap_or(Outcome::Mismatch)),
        }
    }
}

impl IdentityVerifier for Sandbox {
    async fn check_id(&self, doc: &Document) -> Result<Verdict, VerifierError> {
        self.delay().await;
        Self::verdict(self.id_answer(doc)?)
    }

    async fn check_face(&self, doc: &Document, sample: &FaceSample) -> Result<Verdict, VerifierError> {
        self.delay().await;
        let id = self.id_answer(doc)?;
        if id != Outcome::Pass {
            return Self::verdict(id);
        }
        // A sample that is not a live capture (tests send this marker).
        if sample.bytes().starts_with(b"NOT-LIVE") {
            return Self::verdict(Outcome::LivenessFailed);
        }
        let face = self.find(doc).and_then(|i| i.face.as_deref()).unwrap_or("pass");
        Self::verdict(match face {
            "pass" => Outcome::Pass,
            "liveness_fail" => Outcome::LivenessFailed,
            _ => Outcome::FaceMismatch,
        })
    }

    async fn check_bank_card(&self, card: &BankCardCheck) -> Result<Verdict, VerifierError> {
        self.delay().await;
        if card.name.has_rare_character() {
            return Self::verdict(Outcome::RareCharacter);
        }
        let Some(found) = self.fixture.cards.iter().find(|c| c.number == card.card.as_str()) else {
            return Self::verdict(Outcome::Mismatch);
        };
        if found.kind != "debit" {
            return Self::verdict(Outcome::CreditCard);
        }
        let holder = self.fixture.identities.iter().find(|i| i.number == found.holder);
        let matches = found.holder == card.id_number.as_str()
            && found.phone == card.phone.as_str()
            && holder.is_some_and(|h| h.name == card.name.as_str());
        Self::verdict(if matches { Outcome::Pass } else { Outcome::Mismatch })
    }

    async fn check_in_person(&self, token: &str, now: i64) -> Result<Result<InPersonClaims, Outcome>, VerifierError> {
        self.delay().await;
        Ok(assertion::verify(token, &self.reader_key, &self.reader_issuer, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::identity::documents::DocumentForm;

    fn doc(name: &str, number: &str, from: &str, to: &str) -> Document {
        let form = DocumentForm {
            doc_type: "resident_id".into(),
            name: name.into(),
            number: number.into(),
            valid_from: from.into(),
            valid_to: to.into(),
            long_term: to.is_empty().then(|| "on".into()),
        };
        Document::parse(&form, chrono::NaiveDate::from_ymd_opt(2026, 11, 26).unwrap()).unwrap()
    }

    #[tokio::test]
    async fn fixture_answers() {
        let s = Sandbox::from_fixture(BUILTIN_FIXTURE).unwrap();
        let zhang = doc("张三", "110101199003074514", "2018-06-06", "2038-06-06");
        assert_eq!(s.check_id(&zhang).await.unwrap().outcome, Outcome::Pass);
        let wrong = doc("张四", "110101199003074514", "2018-06-06", "2038-06-06");
        assert_eq!(s.check_id(&wrong).await.unwrap().outcome, Outcome::Mismatch);
        let rare = doc("王䶮", "110101198505120037", "2015-01-01", "2035-01-01");
        assert_eq!(s.check_id(&rare).await.unwrap().outcome, Outcome::RareCharacter);
        let slow = doc("郑慢", "11010119700707001X", "2010-01-01", "2030-01-01");
        assert!(matches!(s.check_id(&slow).await, Err(VerifierError::Timeout)));
        let live = FaceSample::new(b"jpeg".to_vec()).unwrap();
        assert_eq!(s.check_face(&zhang, &live).await.unwrap().outcome, Outcome::Pass);
        let dead = FaceSample::new(b"NOT-LIVE".to_vec()).unwrap();
        assert_eq!(s.check_face(&zhang, &dead).await.unwrap().outcome, Outcome::LivenessFailed);
    }
}
