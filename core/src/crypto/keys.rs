//! The signing key ring. Private keys live in the database encrypted with
//! AES-256-GCM under a key derived from the master key; in memory they are
//! parsed once and shared, so signing costs only the signature itself.
use super::jws::{Alg, PrivateKey, PublicKey};
use super::{b64url, b64url_decode, derive_key, random_token};
use crate::clock::Clock;
use crate::store::Store;
use crate::store::entities::signing_key;
use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use rand::RngCore;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// What a key signs. Plugin-signed JWTs (health codes, presentations)
/// have keys of their own, so a plugin token can never verify as an ID or
/// access token, nor one of those as a plugin token: each verifier looks
/// up only keys of its purpose (besides the distinct `typ`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyPurpose {
    /// ID, access and logout tokens.
    Token,
    /// JWTs signed for plugins through the host callback.
    Plugin,
}

impl KeyPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyPurpose::Token => "token",
            KeyPurpose::Plugin => "plugin",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "token" => Some(KeyPurpose::Token),
            "plugin" => Some(KeyPurpose::Plugin),
            _ => None,
        }
    }
}

/// The keys kept active: ES256, RS256 and PS256 for tokens (clients choose
/// their ID token algorithm; PS256 has an RSA key of its own, so one key
/// never signs with two paddings), ES256 alone for plugins.
const KEY_KINDS: [(KeyPurpose, Alg); 4] = [
    (KeyPurpose::Token, Alg::Es256),
    (KeyPurpose::Token, Alg::Rs256),
    (KeyPurpose::Token, Alg::Ps256),
    (KeyPurpose::Plugin, Alg::Es256),
];

pub struct SigningKey {
    pub kid: String,
    pub alg: Alg,
    pub purpose: KeyPurpose,
    pub signer: PrivateKey,
    pub public: PublicKey,
    pub jwk: Value,
}

impl SigningKey {
    pub fn sign_jwt(&self, typ: &str, payload: &Value) -> String {
        super::jws::sign(&self.signer, self.alg, &self.kid, typ, payload)
    }
}

fn public_jwk(alg: Alg, kid: &str, public: &PublicKey) -> Value {
    match public {
        PublicKey::Es256(k) => {
            let point = k.to_encoded_point(false);
            json!({
                "kty": "EC", "crv": "P-256", "use": "sig", "alg": alg.name(), "kid": kid,
                "x": b64url(point.x().map(|x| &x[..]).unwrap_or_default()),
                "y": b64url(point.y().map(|y| &y[..]).unwrap_or_default()),
            })
        }
        PublicKey::Rs256(_) | PublicKey::Ps256(_) => {
            use rsa::traits::PublicKeyParts;
            let Some(key) = public.rsa_public() else { return json!({}) };
            json!({
                "kty": "RSA", "use": "sig", "alg": alg.name(), "kid": kid,
                "n": b64url(&key.n().to_bytes_be()),
                "e": b64url(&key.e().to_bytes_be()),
            })
        }
    }
}

fn from_pkcs8(purpose: KeyPurpose, alg: Alg, kid: String, der: &[u8]) -> anyhow::Result<SigningKey> {
    let (signer, public) = match alg {
        Alg::Es256 => {
            let k = p256::ecdsa::SigningKey::from_pkcs8_der(der)?;
            let public = PublicKey::Es256(*k.verifying_key());
            (PrivateKey::es256(&k), public)
        }
        Alg::Rs256 => {
            let k = rsa::RsaPrivateKey::from_pkcs8_der(der)?;
            let public = PublicKey::Rs256(Box::new(rsa::pkcs1v15::VerifyingKey::new(k.to_public_key())));
            (PrivateKey::Rs256(Box::new(rsa::pkcs1v15::SigningKey::new(k))), public)
        }
        Alg::Ps256 => {
            let k = rsa::RsaPrivateKey::from_pkcs8_der(der)?;
            let public = PublicKey::Ps256(Box::new(rsa::pss::VerifyingKey::new(k.to_public_key())));
            (PrivateKey::Ps256(Box::new(rsa::pss::BlindedSigningKey::new(k))), public)
        }
    };
    let jwk = public_jwk(alg, &kid, &public);
    Ok(SigningKey { kid, alg, purpose, signer, public, jwk })
}

fn generate_pkcs8(alg: Alg) -> anyhow::Result<Vec<u8>> {
    let mut rng = rand::rngs::OsRng;
    Ok(match alg {
        Alg::Es256 => p256::ecdsa::SigningKey::random(&mut rng).to_pkcs8_der()?.as_bytes().to_vec(),
        Alg::Rs256 | Alg::Ps256 => rsa::RsaPrivateKey::new(&mut rng, 2048)?.to_pkcs8_der()?.as_bytes().to_vec(),
    })
}

/// Encrypts key material at rest: base64url(nonce ‖ AES-256-GCM ciphertext).
#[derive(Clone)]
pub struct KeyVault {
    cipher: Aes256Gcm,
}

impl KeyVault {
    pub fn new(master: &[u8; 32]) -> Self {
        Self::for_purpose(master, b"idp signing key encryption v1")
    }

    /// A vault for other secrets at rest (e.g. TOTP seeds), under its own
    /// sub-key so one kind of ciphertext can never be opened as another.
    pub fn for_purpose(master: &[u8; 32], label: &[u8]) -> Self {
        let key = derive_key(master, label);
        Self { cipher: Aes256Gcm::new(&key.into()) }
    }

    pub fn seal(&self, plain: &[u8], aad: &[u8]) -> anyhow::Result<String> {
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = self
            .cipher
            .encrypt(&Nonce::from(nonce), aes_gcm::aead::Payload { msg: plain, aad })
            .map_err(|_| anyhow::anyhow!("key encryption failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(b64url(&out))
    }

    pub fn open(&self, sealed: &str, aad: &[u8]) -> anyhow::Result<Vec<u8>> {
        let raw = b64url_decode(sealed).ok_or_else(|| anyhow::anyhow!("stored key is not base64url"))?;
        if raw.len() < 13 {
            anyhow::bail!("stored key is truncated");
        }
        let (nonce, ct) = raw.split_at(12);
        let nonce: [u8; 12] = nonce.try_into()?;
        self.cipher
            .decrypt(&Nonce::from(nonce), aes_gcm::aead::Payload { msg: ct, aad })
            .map_err(|_| anyhow::anyhow!("cannot decrypt signing key: wrong master key?"))
    }
}

/// A snapshot of the keys: the active key per purpose and algorithm, every
/// published key by kid for verification, and the JWKS document
/// pre-serialised.
pub struct KeySet {
    pub active: HashMap<(KeyPurpose, Alg), Arc<SigningKey>>,
    pub by_kid: HashMap<String, Arc<SigningKey>>,
    pub jwks: String,
}

impl KeySet {
    /// The active token-signing key of `alg`.
    pub fn signer(&self, alg: Alg) -> Option<&Arc<SigningKey>> {
        self.active.get(&(KeyPurpose::Token, alg))
    }
    /// The active key that signs plugin JWTs (ES256).
    pub fn plugin_signer(&self) -> Option<&Arc<SigningKey>> {
        self.active.get(&(KeyPurpose::Plugin, Alg::Es256))
    }
    /// A published key of `purpose` by kid: a key of the other purpose is
    /// unknown here, whatever the token claims.
    pub fn verifier(&self, kid: &str, purpose: KeyPurpose) -> Option<&Arc<SigningKey>> {
        self.by_kid.get(kid).filter(|k| k.purpose == purpose)
    }
}

#[derive(Clone)]
pub struct KeyRing {
    vault: KeyVault,
    current: Arc<RwLock<Arc<KeySet>>>,
    /// Creation and retirement times, and the publish window of retired
    /// keys (the reload interval itself stays on tokio time).
    clock: Clock,
}

impl KeyRing {
    pub fn new(vault: KeyVault, clock: Clock) -> Self {
        let empty = KeySet { active: HashMap::new(), by_kid: HashMap::new(), jwks: "{\"keys\":[]}".into() };
        Self { vault, current: Arc::new(RwLock::new(Arc::new(empty))), clock }
    }

    pub fn snapshot(&self) -> Arc<KeySet> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// A ring holding one fresh in-memory key per algorithm, for the fuzz
    /// harnesses (`idp::fuzzing`), which verify tokens without a database.
    /// Its keys are random and never stored.
    pub fn ephemeral() -> anyhow::Result<Self> {
        let ring = Self::new(KeyVault::new(&[7; 32]), Clock::default());
        let mut active = HashMap::new();
        let mut by_kid = HashMap::new();
        for (purpose, alg) in KEY_KINDS {
            let kid = format!("fuzz-{}-{}", purpose.as_str(), alg.name());
            let key = Arc::new(from_pkcs8(purpose, alg, kid.clone(), &generate_pkcs8(alg)?)?);
            by_kid.insert(kid, key.clone());
            active.insert((purpose, alg), key);
        }
        let jwks = json!({ "keys": by_kid.values().map(|k| k.jwk.clone()).collect::<Vec<_>>() }).to_string();
        let set = Arc::new(KeySet { active, by_kid, jwks });
        match ring.current.write() {
            Ok(mut guard) => *guard = set,
            Err(poisoned) => *poisoned.into_inner() = set,
        }
        Ok(ring)
    }

    /// Creates an active key for every purpose and algorithm that has none
    /// (a database from before plugin keys existed gets its plugin key here).
    pub async fn ensure_keys(&self, db: &Store) -> anyhow::Result<()> {
        for (purpose, alg) in KEY_KINDS {
            let existing = signing_key::Entity::find()
                .filter(signing_key::Column::Alg.eq(alg.name()))
                .filter(signing_key::Column::Purpose.eq(purpose.as_str()))
                .filter(signing_key::Column::Active.eq(true))
                .one(db)
                .await?;
            if existing.is_none() {
                self.create_key(db, purpose, alg).await?;
            }
        }
        Ok(())
    }

    async fn create_key(&self, db: &Store, purpose: KeyPurpose, alg: Alg) -> anyhow::Result<String> {
        let der = tokio::task::spawn_blocking(move || generate_pkcs8(alg)).await??;
        // Plugin kids say so, for whoever reads the JWKS or a token header.
        let prefix = match purpose {
            KeyPurpose::Token => String::new(),
            KeyPurpose::Plugin => "plugin-".into(),
        };
        let kid = format!("{prefix}{}-{}", alg.name().to_ascii_lowercase(), random_token(9));
        let key = from_pkcs8(purpose, alg, kid.clone(), &der)?;
        let sealed = self.vault.seal(&der, kid.as_bytes())?;
        signing_key::ActiveModel {
            kid: Set(kid.clone()),
            alg: Set(alg.name().into()),
            private_enc: Set(sealed),
            public_jwk: Set(key.jwk.to_string()),
            active: Set(true),
            created_at: Set(self.clock.now()),
            retired_at: Set(None),
            purpose: Set(purpose.as_str().into()),
        }
        .insert(db)
        .await?;
        Ok(kid)
    }

    /// Retires the active key of each purpose and algorithm and creates a
    /// new one. The retired keys stay in the JWKS for `publish_for` seconds
    /// so tokens they signed still verify.
    /// Every key on record, active and retired (the `idp keys list` command).
    pub async fn list(db: &Store) -> Result<Vec<signing_key::Model>, sea_orm::DbErr> {
        signing_key::Entity::find().all(db).await
    }

    pub async fn rotate(&self, db: &Store) -> anyhow::Result<Vec<String>> {
        let now = self.clock.now();
        let mut created = Vec::new();
        for (purpose, alg) in KEY_KINDS {
            let kid = self.create_key(db, purpose, alg).await?;
            let olds = signing_key::Entity::find()
                .filter(signing_key::Column::Alg.eq(alg.name()))
                .filter(signing_key::Column::Purpose.eq(purpose.as_str()))
                .filter(signing_key::Column::Active.eq(true))
                .filter(signing_key::Column::Kid.ne(kid.clone()))
                .all(db)
                .await?;
            for old in olds {
                let mut model: signing_key::ActiveModel = old.into();
                model.active = Set(false);
                model.retired_at = Set(Some(now));
                model.update(db).await?;
            }
            created.push(kid);
        }
        Ok(created)
    }

    /// Reloads keys from the database (at start and periodically, so a
    /// rotation on one node reaches the others).
    pub async fn reload(&self, db: &Store, publish_for: i64) -> anyhow::Result<()> {
        let now = self.clock.now();
        let rows = signing_key::Entity::find().all(db).await?;
        let previous = self.snapshot();
        let mut active: HashMap<(KeyPurpose, Alg), (i64, Arc<SigningKey>)> = HashMap::new();
        let mut by_kid = HashMap::new();
        let mut jwks = Vec::new();
        for row in rows {
            let published = row.active || row.retired_at.is_some_and(|t| t + publish_for > now);
            if !published {
                continue;
            }
            let (Some(alg), Some(purpose)) = (Alg::parse(&row.alg), KeyPurpose::parse(&row.purpose)) else {
                continue;
            };
            let key = match previous.by_kid.get(&row.kid) {
                Some(k) => k.clone(),
                None => {
                    let der = self.vault.open(&row.private_enc, row.kid.as_bytes())?;
                    Arc::new(from_pkcs8(purpose, alg, row.kid.clone(), &der)?)
                }
            };
            jwks.push(key.jwk.clone());
            // During a rotation two keys may briefly be active: sign with the newest.
            if row.active && active.get(&(purpose, alg)).is_none_or(|(created, _)| *created < row.created_at) {
                active.insert((purpose, alg), (row.created_at, key.clone()));
            }
            by_kid.insert(row.kid, key);
        }
        let jwks = json!({ "keys": jwks }).to_string();
        let active = active.into_iter().map(|(kind, (_, key))| (kind, key)).collect();
        let set = Arc::new(KeySet { active, by_kid, jwks });
        match self.current.write() {
            Ok(mut guard) => *guard = set,
            Err(poisoned) => *poisoned.into_inner() = set,
        }
        Ok(())
    }
}
