//! WebAuthn passkeys: registration, passwordless sign-in and use
//! as a phishing-resistant second factor, with webauthn-rs.
//!
//! - Relying party id and origin come from the issuer URL. The WebAuthn
//!   spec forbids IP addresses as RP ids and browsers require https except
//!   on `localhost`, so with an issuer like `http://127.0.0.1:8080` passkeys
//!   are unavailable (everything else works).
//! - Ceremony state lives in the database (webauthn-rs
//!   `danger-allow-state-serialisation`), bound to the browser, valid five
//!   minutes and taken exactly once, so any node can finish a ceremony and
//!   none can be replayed.
//! - Sign-in is username-first: the account's credentials are the only
//!   ones allowed, so a passkey of one user can never sign in as another.
//!   An unknown account, or one without passkeys, gets a decoy challenge
//!   that looks like a real one (no account enumeration).
//! - Or usernameless (discoverable credential, conditional UI): the
//!   challenge names no credential; the authenticator answers with its
//!   credential id and the user handle it stored at registration. The
//!   credential id picks the stored passkey, whose account must own that
//!   user handle, and the signature is checked against that key alone.
//!   Registration asks for a discoverable credential (`residentKey:
//!   preferred`), so authenticators that can store one do.
//! - The signature counter is checked by webauthn-rs; a counter that does
//!   not move forward means a possibly cloned authenticator, which is
//!   refused and reported to the caller (to audit).
use crate::crypto::{SecretHasher, b64url, random_token};
use crate::store::Store;
use crate::store::entities::{passkey, webauthn_ceremony};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, Set};
use serde_json::{Value, json};
use std::sync::Arc;
use webauthn_rs::prelude::{
    AuthenticationResult, DiscoverableAuthentication, DiscoverableKey, Passkey, PasskeyAuthentication,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential, Url, Uuid, Webauthn, WebauthnBuilder,
    WebauthnError,
};

const CEREMONY_LIFETIME: i64 = 5 * 60;
const DECOY: &str = "decoy";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ceremony {
    Register,
    Login,
    /// Usernameless sign-in: the authenticator names the account.
    Discoverable,
    StepUp,
}

impl Ceremony {
    fn as_str(self) -> &'static str {
        match self {
            Ceremony::Register => "register",
            Ceremony::Login => "login",
            Ceremony::Discoverable => "discoverable",
            Ceremony::StepUp => "step_up",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    #[error("passkeys need an https issuer with a domain name (or http://localhost)")]
    Unavailable,
    #[error("no such ceremony in this browser (expired, used or foreign)")]
    NoCeremony,
    #[error("the authenticator's answer was refused: {0}")]
    Rejected(String),
    #[error("signature counter did not increase: possibly a cloned authenticator")]
    PossibleClone { user_id: String, passkey_id: Option<String> },
    #[error("this passkey is already registered")]
    Duplicate,
    #[error("storage unavailable: {0}")]
    Store(#[from] DbErr),
    #[error("internal error: {0}")]
    Internal(String),
}

/// What the browser needs to run a ceremony: the ceremony id to send back
/// and the options for `navigator.credentials.create/get`.
pub struct Begun {
    pub ceremony: String,
    pub options: Value,
}

/// A passkey as the security page lists it.
#[derive(serde::Serialize)]
pub struct Listed {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

#[derive(Clone)]
pub struct PasskeyService {
    db: Store,
    webauthn: Option<Arc<Webauthn>>,
    hasher: SecretHasher,
    rp_id: String,
}

/// Builds the relying party from the issuer URL, or `None` when the issuer
/// cannot be one (IP address host).
fn relying_party(issuer: &str) -> Option<(Webauthn, String)> {
    let url = Url::parse(issuer).ok()?;
    let rp_id = url.domain()?.to_string();
    let origin = Url::parse(&url.origin().ascii_serialization()).ok()?;
    let w = WebauthnBuilder::new(&rp_id, &origin).ok()?.rp_name(&rp_id).build().ok()?;
    Some((w, rp_id))
}

/// The stable WebAuthn user handle of an account (account ids are UUIDs;
/// anything else is hashed into one).
fn user_handle(user_id: &str) -> Uuid {
    Uuid::parse_str(user_id).unwrap_or_else(|_| {
        let digest = crate::crypto::sha256_b64(user_id.as_bytes());
        let bytes = crate::crypto::b64url_decode(&digest).unwrap_or_default();
        let mut b = [0u8; 16];
        for (i, v) in bytes.iter().take(16).enumerate() {
            b[i] = *v;
        }
        Uuid::from_bytes(b)
    })
}

fn internal(e: impl std::fmt::Display) -> PasskeyError {
    PasskeyError::Internal(e.to_string())
}

impl PasskeyService {
    pub fn new(db: Store, hasher: SecretHasher, issuer: &str) -> Self {
        match relying_party(issuer) {
            Some((w, rp_id)) => Self { db, webauthn: Some(Arc::new(w)), hasher, rp_id },
            None => {
                tracing::info!("passkeys disabled: issuer {issuer} has no domain name to be a WebAuthn RP id");
                Self { db, webauthn: None, hasher, rp_id: String::new() }
            }
        }
    }

    pub fn available(&self) -> bool {
        self.webauthn.is_some()
    }

    fn rp(&self) -> Result<&Webauthn, PasskeyError> {
        self.webauthn.as_deref().ok_or(PasskeyError::Unavailable)
    }

    async fn rows(&self, user_id: &str) -> Result<Vec<passkey::Model>, DbErr> {
        passkey::Entity::find()
            .filter(passkey::Column::UserId.eq(user_id))
            .order_by_asc(passkey::Column::CreatedAt)
            .all(&self.db)
            .await
    }

    fn parse(row: &passkey::Model) -> Option<Passkey> {
        serde_json::from_str(&row.credential).ok()
    }

    pub async fn list(&self, user_id: &str) -> Result<Vec<Listed>, DbErr> {
        Ok(self
            .rows(user_id)
            .await?
            .into_iter()
            .map(|r| Listed { id: r.id, name: r.name, created_at: r.created_at, last_used_at: r.last_used_at })
            .collect())
    }

    pub async fn count(&self, user_id: &str) -> Result<usize, DbErr> {
        Ok(self.rows(user_id).await?.len())
    }

    async fn store_ceremony(
        &self,
        kind: Ceremony,
        browser: &str,
        user_id: Option<&str>,
        state: String,
        now: i64,
    ) -> Result<String, DbErr> {
        let id = random_token(18);
        webauthn_ceremony::ActiveModel {
            id: Set(id.clone()),
            kind: Set(kind.as_str().into()),
            browser: Set(browser.into()),
            user_id: Set(user_id.map(String::from)),
            state: Set(state),
            expires_at: Set(now + CEREMONY_LIFETIME),
        }
        .insert(&self.db)
        .await?;
        Ok(id)
    }

    /// Takes a ceremony of this kind in this browser, once.
    async fn take_ceremony(
        &self,
        id: &str,
        kind: Ceremony,
        browser: &str,
        now: i64,
    ) -> Result<webauthn_ceremony::Model, PasskeyError> {
        if id.is_empty() || id.len() > 64 {
            return Err(PasskeyError::NoCeremony);
        }
        let row = webauthn_ceremony::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await?
            .filter(|c| c.kind == kind.as_str() && c.browser == browser && c.expires_at > now)
            .ok_or(PasskeyError::NoCeremony)?;
        let r = webauthn_ceremony::Entity::delete_many()
            .filter(webauthn_ceremony::Column::Id.eq(id))
            .exec(&self.db)
            .await?;
        if r.rows_affected != 1 {
            return Err(PasskeyError::NoCeremony);
        }
        Ok(row)
    }

    /// Registration, step 1: options for `navigator.credentials.create`.
    pub async fn start_registration(
        &self,
        user_id: &str,
        username: &str,
        display_name: &str,
        browser: &str,
        now: i64,
    ) -> Result<Begun, PasskeyError> {
        let rp = self.rp()?;
        let existing: Vec<_> =
            self.rows(user_id).await?.iter().filter_map(Self::parse).map(|p| p.cred_id().clone()).collect();
        let exclude = (!existing.is_empty()).then_some(existing);
        let (ccr, reg) = rp
            .start_passkey_registration(user_handle(user_id), username, display_name, exclude)
            .map_err(|e| PasskeyError::Rejected(e.to_string()))?;
        let state = serde_json::to_string(&reg).map_err(internal)?;
        let ceremony = self.store_ceremony(Ceremony::Register, browser, Some(user_id), state, now).await?;
        let mut options = serde_json::to_value(&ccr).map_err(internal)?;
        // webauthn-rs asks for no resident key; a discoverable one is what
        // makes usernameless sign-in possible. Preferred, not required, so
        // authenticators that cannot store one still register.
        if let Some(sel) = options.pointer_mut("/publicKey/authenticatorSelection").and_then(Value::as_object_mut) {
            sel.insert("residentKey".into(), "preferred".into());
        }
        Ok(Begun { ceremony, options })
    }

    /// Registration, step 2: verifies the attestation and stores the passkey.
    pub async fn finish_registration(
        &self,
        ceremony: &str,
        browser: &str,
        user_id: &str,
        name: &str,
        credential: &str,
        now: i64,
    ) -> Result<passkey::Model, PasskeyError> {
        let rp = self.rp()?;
        let row = self.take_ceremony(ceremony, Ceremony::Register, browser, now).await?;
        if row.user_id.as_deref() != Some(user_id) {
            return Err(PasskeyError::NoCeremony);
        }
        let state: PasskeyRegistration = serde_json::from_str(&row.state).map_err(internal)?;
        let reg: RegisterPublicKeyCredential =
            serde_json::from_str(credential).map_err(|e| PasskeyError::Rejected(e.to_string()))?;
        let pk = rp.finish_passkey_registration(&reg, &state).map_err(|e| PasskeyError::Rejected(e.to_string()))?;
        let name: String = name.trim().chars().filter(|c| !c.is_control()).take(40).collect();
        let model = passkey::ActiveModel {
            id: Set(random_token(12)),
            user_id: Set(user_id.into()),
            cred_id: Set(b64url(pk.cred_id().as_ref())),
            name: Set(if name.is_empty() { "Passkey".into() } else { name }),
            credential: Set(serde_json::to_string(&pk).map_err(internal)?),
            created_at: Set(now),
            last_used_at: Set(None),
        };
        // The unique index on cred_id refuses a credential already
        // registered, to this account or any other.
        match model.insert(&self.db).await {
            Ok(m) => Ok(m),
            Err(e) if matches!(e.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_))) => {
                Err(PasskeyError::Duplicate)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Authentication, step 1, for `user_id` (passwordless sign-in after
    /// the user named the account, or step-up of the signed-in user).
    /// `None` as user (unknown account) gets a decoy.
    pub async fn start_authentication(
        &self,
        kind: Ceremony,
        user_id: Option<&str>,
        decoy_seed: &str,
        browser: &str,
        now: i64,
    ) -> Result<Begun, PasskeyError> {
        let rp = self.rp()?;
        let keys: Vec<Passkey> = match user_id {
            Some(u) => self.rows(u).await?.iter().filter_map(Self::parse).collect(),
            None => Vec::new(),
        };
        if keys.is_empty() {
            let options = self.decoy(decoy_seed);
            let ceremony = self.store_ceremony(kind, browser, None, DECOY.into(), now).await?;
            return Ok(Begun { ceremony, options });
        }
        let (rcr, auth) = rp.start_passkey_authentication(&keys).map_err(|e| PasskeyError::Rejected(e.to_string()))?;
        let state = serde_json::to_string(&auth).map_err(internal)?;
        let ceremony = self.store_ceremony(kind, browser, user_id, state, now).await?;
        Ok(Begun { ceremony, options: serde_json::to_value(&rcr).map_err(internal)? })
    }

    /// A challenge shaped like a real one, naming a credential id derived
    /// from the typed account (stable, so repeated tries look alike).
    fn decoy(&self, seed: &str) -> Value {
        let fake_id = self.hasher.digest("passkey decoy", &seed.trim().to_lowercase());
        json!({
            "publicKey": {
                "challenge": random_token(32),
                "timeout": 300000,
                "rpId": self.rp_id,
                "allowCredentials": [{ "type": "public-key", "id": fake_id }],
                "userVerification": "required",
            }
        })
    }

    /// Authentication, step 2: verifies the assertion against the
    /// ceremony's account, updates the stored counter and returns the
    /// account id and the passkey's name.
    pub async fn finish_authentication(
        &self,
        kind: Ceremony,
        ceremony: &str,
        browser: &str,
        credential: &str,
        now: i64,
    ) -> Result<(String, String), PasskeyError> {
        let rp = self.rp()?;
        let row = self.take_ceremony(ceremony, kind, browser, now).await?;
        let Some(user_id) = row.user_id.filter(|_| row.state != DECOY) else {
            return Err(PasskeyError::Rejected("no passkey for this account".into()));
        };
        let state: PasskeyAuthentication = serde_json::from_str(&row.state).map_err(internal)?;
        let assertion: PublicKeyCredential =
            serde_json::from_str(credential).map_err(|e| PasskeyError::Rejected(e.to_string()))?;
        let cred_id = b64url(assertion.raw_id.as_ref());
        let stored = passkey::Entity::find()
            .filter(passkey::Column::CredId.eq(cred_id.as_str()))
            .filter(passkey::Column::UserId.eq(user_id.as_str()))
            .one(&self.db)
            .await?;
        let result = match rp.finish_passkey_authentication(&assertion, &state) {
            Ok(r) => r,
            Err(WebauthnError::CredentialPossibleCompromise) => {
                return Err(PasskeyError::PossibleClone { user_id, passkey_id: stored.map(|s| s.id) });
            }
            Err(e) => return Err(PasskeyError::Rejected(e.to_string())),
        };
        // The state allowed only this account's credentials; the stored row
        // must still exist (it may have been removed meanwhile).
        let Some(stored) = stored else {
            return Err(PasskeyError::Rejected("passkey removed".into()));
        };
        self.record_use(user_id, stored, &result, now).await
    }

    /// Usernameless sign-in, step 1: a challenge naming no credential
    /// (webauthn-rs marks it for conditional mediation, i.e. autofill; a
    /// button may run it as an ordinary modal request).
    pub async fn start_discoverable(&self, browser: &str, now: i64) -> Result<Begun, PasskeyError> {
        let rp = self.rp()?;
        let (rcr, auth) = rp.start_discoverable_authentication().map_err(|e| PasskeyError::Rejected(e.to_string()))?;
        let state = serde_json::to_string(&auth).map_err(internal)?;
        let ceremony = self.store_ceremony(Ceremony::Discoverable, browser, None, state, now).await?;
        Ok(Begun { ceremony, options: serde_json::to_value(&rcr).map_err(internal)? })
    }

    /// Sign-in, step 2, whichever way it began (username-first or
    /// usernameless); the ceremony row says which.
    pub async fn finish_login(
        &self,
        ceremony: &str,
        browser: &str,
        credential: &str,
        now: i64,
    ) -> Result<(String, String), PasskeyError> {
        let kind = match ceremony.len() {
            1..=64 => webauthn_ceremony::Entity::find_by_id(ceremony.to_owned()).one(&self.db).await?.map(|c| c.kind),
            _ => None,
        };
        if kind.as_deref() == Some(Ceremony::Discoverable.as_str()) {
            self.finish_discoverable(ceremony, browser, credential, now).await
        } else {
            self.finish_authentication(Ceremony::Login, ceremony, browser, credential, now).await
        }
    }

    /// Usernameless sign-in, step 2: the credential id names the stored
    /// passkey, the user handle must be its account's, and the signature
    /// is checked against that one key. Returns account id and name.
    pub async fn finish_discoverable(
        &self,
        ceremony: &str,
        browser: &str,
        credential: &str,
        now: i64,
    ) -> Result<(String, String), PasskeyError> {
        let rp = self.rp()?;
        let row = self.take_ceremony(ceremony, Ceremony::Discoverable, browser, now).await?;
        let state: DiscoverableAuthentication = serde_json::from_str(&row.state).map_err(internal)?;
        let assertion: PublicKeyCredential =
            serde_json::from_str(credential).map_err(|e| PasskeyError::Rejected(e.to_string()))?;
        let (handle, cred_id) =
            rp.identify_discoverable_authentication(&assertion).map_err(|e| PasskeyError::Rejected(e.to_string()))?;
        let stored = passkey::Entity::find()
            .filter(passkey::Column::CredId.eq(b64url(cred_id)))
            .one(&self.db)
            .await?
            .filter(|p| user_handle(&p.user_id) == handle)
            .ok_or_else(|| PasskeyError::Rejected("unknown passkey".into()))?;
        let key = Self::parse(&stored).ok_or_else(|| internal("stored passkey unreadable"))?;
        #[allow(deprecated)] // the v2 call needs the credential internals feature
        let result = rp.finish_discoverable_authentication(&assertion, state, &[DiscoverableKey::from(&key)]);
        let result = match result {
            Ok(r) => r,
            Err(WebauthnError::CredentialPossibleCompromise) => {
                return Err(PasskeyError::PossibleClone { user_id: stored.user_id, passkey_id: Some(stored.id) });
            }
            Err(e) => return Err(PasskeyError::Rejected(e.to_string())),
        };
        self.record_use(stored.user_id.clone(), stored, &result, now).await
    }

    /// After a verified assertion: the clone check against the counter
    /// stored now, then the counter update, decided by one conditional
    /// UPDATE.
    async fn record_use(
        &self,
        user_id: String,
        stored: passkey::Model,
        result: &AuthenticationResult,
        now: i64,
    ) -> Result<(String, String), PasskeyError> {
        // webauthn-rs compares the counter with the snapshot taken when the
        // ceremony began; two ceremonies begun together would each pass. So
        // the same rule (WebAuthn §7.2 step 21) is applied again to the
        // counter stored now.
        let before = stored_counter(&stored.credential);
        if (result.counter() > 0 || before > 0) && result.counter() <= before {
            return Err(PasskeyError::PossibleClone { user_id, passkey_id: Some(stored.id) });
        }
        let mut pk = Self::parse(&stored).ok_or_else(|| internal("stored passkey unreadable"))?;
        pk.update_credential(result);
        let updated = passkey::Entity::update_many()
            .col_expr(passkey::Column::Credential, Expr::value(serde_json::to_string(&pk).map_err(internal)?))
            .col_expr(passkey::Column::LastUsedAt, Expr::value(now))
            .filter(passkey::Column::Id.eq(stored.id.as_str()))
            // A racing use with the same counter loses (counter-based clone check).
            .filter(passkey::Column::Credential.eq(stored.credential.as_str()))
            .exec(&self.db)
            .await?;
        if updated.rows_affected != 1 {
            return Err(PasskeyError::PossibleClone { user_id, passkey_id: Some(stored.id) });
        }
        Ok((user_id, stored.name))
    }
}

/// The signature counter of a stored passkey (webauthn-rs keeps it in the
/// serialised credential and exposes no getter without its
/// `danger-credential-internals` feature).
fn stored_counter(credential: &str) -> u32 {
    serde_json::from_str::<Value>(credential)
        .ok()
        .and_then(|v| v.get("cred").and_then(|c| c.get("counter")).and_then(Value::as_u64))
        .and_then(|c| u32::try_from(c).ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rp_from_issuer() {
        assert!(relying_party("https://id.example.gov.cn").is_some());
        assert!(relying_party("http://localhost:8080").is_some());
        assert!(relying_party("http://127.0.0.1:8080").is_none(), "IP addresses are not RP ids");
    }

    #[test]
    fn counter_read_from_the_stored_credential() {
        assert_eq!(stored_counter(r#"{"cred":{"cred_id":"x","counter":7}}"#), 7);
        assert_eq!(stored_counter("not json"), 0);
    }

    #[test]
    fn user_handles_are_stable() {
        let id = "7b0d7c4e-3c1a-4f53-9d3e-1f4b2a6c8e90";
        assert_eq!(user_handle(id).to_string(), id);
        assert_eq!(user_handle("not-a-uuid"), user_handle("not-a-uuid"));
    }
}
