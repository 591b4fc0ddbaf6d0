//! Changing a registered app after creation (issue 15, G1): its settings
//! and a new secret. The caller (the console's `staff::apps`) checks who
//! may; these record the change with the actor they are given, in the
//! transaction that makes it, and drop the app from the cache at once.
use super::{AuthMethod, ClientService, SECRET_PURPOSE, mtls, validate_redirect_uri};
use crate::crypto::random_token;
use crate::domain::audit::{Actor, Event};
use crate::domain::clients::scopes::SUPPORTED;
use crate::domain::error::DomainError;
use crate::store::entities::client;
use sea_orm::{ActiveModelTrait, EntityTrait, Set};
use serde_json::{Map, Value};

/// How long the previous secret keeps working after a rotation (24 h).
pub const SECRET_GRACE: i64 = 24 * 3600;

/// The settings an operator edits.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// Space-separated; standard scopes only (plugin scopes are granted
    /// separately).
    pub allowed_scopes: String,
    pub min_level: Option<u8>,
    pub skip_consent: bool,
}

/// Why a settings change was refused (locale key).
pub fn check(s: &Settings) -> Result<(), &'static str> {
    if s.name.trim().is_empty() || s.name.chars().count() > 100 {
        return Err("admin_app_name_rule");
    }
    if s.redirect_uris.is_empty() {
        return Err("admin_app_redirect_required");
    }
    if s.redirect_uris.iter().chain(s.post_logout_redirect_uris.iter()).any(|u| validate_redirect_uri(u).is_err()) {
        return Err("admin_app_uri_rule");
    }
    if s.allowed_scopes.split_whitespace().any(|sc| !SUPPORTED.contains(&sc)) {
        return Err("admin_app_scope_rule");
    }
    if s.min_level.is_some_and(|l| !(1..=4).contains(&l)) {
        return Err("admin_app_level_rule");
    }
    Ok(())
}

impl ClientService {
    /// Replaces an app's editable settings. `Ok(false)`: no such app.
    pub async fn update_settings(&self, client_id: &str, s: &Settings, by: Actor<'_>) -> Result<bool, DomainError> {
        check(s).map_err(|k| DomainError::Internal(anyhow::anyhow!(k)))?;
        let txn = crate::store::begin_write(&self.db).await?;
        let Some(row) = client::Entity::find_by_id(client_id.to_owned()).one(&txn).await? else {
            return Ok(false);
        };
        let mut m: client::ActiveModel = row.into();
        m.name = Set(s.name.trim().to_string());
        m.redirect_uris = Set(serde_json::to_string(&s.redirect_uris).unwrap_or_default());
        m.post_logout_redirect_uris = Set(serde_json::to_string(&s.post_logout_redirect_uris).unwrap_or_default());
        m.allowed_scopes = Set(s.allowed_scopes.split_whitespace().collect::<Vec<_>>().join(" "));
        m.min_acr = Set(s.min_level.map(|l| l.to_string()));
        m.skip_consent = Set(s.skip_consent);
        m.update(&txn).await?;
        let subject = format!("client:{client_id}");
        let detail = format!(
            "scopes={} min_level={} skip_consent={}",
            s.allowed_scopes.replace(' ', ","),
            s.min_level.unwrap_or(0),
            s.skip_consent
        );
        crate::domain::audit::record(
            &txn,
            Event::new("client_updated", by, &subject).detail(&detail),
            self.clock.now(),
        )
        .await?;
        txn.commit().await?;
        self.changed(client_id).await;
        Ok(true)
    }

    /// Gives a confidential app a new secret, returned once; the old one
    /// keeps working for [`SECRET_GRACE`] seconds so the app can roll over
    /// (a second rotation ends the grace of the first at once). `Ok(None)`: no such app, or a public one or
    /// one authenticating by key (no secret to rotate).
    pub async fn rotate_secret(&self, client_id: &str, by: Actor<'_>) -> Result<Option<String>, DomainError> {
        let txn = crate::store::begin_write(&self.db).await?;
        let Some(row) = client::Entity::find_by_id(client_id.to_owned()).one(&txn).await? else {
            return Ok(None);
        };
        if row.secret_hash.is_none() {
            return Ok(None);
        }
        let secret = random_token(32);
        let now = self.clock.now();
        let previous = row.secret_hash.clone();
        let mut m: client::ActiveModel = row.into();
        m.secret_hash = Set(Some(self.hasher.digest(SECRET_PURPOSE, &secret)));
        m.old_secret_hash = Set(previous);
        m.old_secret_until = Set(Some(now + SECRET_GRACE));
        m.update(&txn).await?;
        let subject = format!("client:{client_id}");
        let detail = format!("old_secret_until={}", now + SECRET_GRACE);
        crate::domain::audit::record(&txn, Event::new("client_secret_rotated", by, &subject).detail(&detail), now)
            .await?;
        txn.commit().await?;
        self.changed(client_id).await;
        Ok(Some(secret))
    }

    /// Disables (no authorization, no client authentication) or enables an
    /// app. `Ok(false)`: no such app. Changing nothing records nothing.
    pub async fn set_disabled(&self, client_id: &str, disabled: bool, by: Actor<'_>) -> Result<bool, DomainError> {
        let txn = crate::store::begin_write(&self.db).await?;
        let Some(row) = client::Entity::find_by_id(client_id.to_owned()).one(&txn).await? else {
            return Ok(false);
        };
        if row.disabled != disabled {
            let mut m: client::ActiveModel = row.into();
            m.disabled = Set(disabled);
            m.update(&txn).await?;
            let subject = format!("client:{client_id}");
            let action = if disabled { "client_disabled" } else { "client_enabled" };
            crate::domain::audit::record(&txn, Event::new(action, by, &subject), self.clock.now()).await?;
        }
        txn.commit().await?;
        self.changed(client_id).await;
        Ok(true)
    }

    /// Replaces the public keys of a `private_key_jwt` app (a JWK Set with
    /// at least one usable EC P-256 or RSA key; private parts refused).
    /// `Ok(false)`: no such app. `Err(Invalid)` is mapped by the caller.
    pub async fn set_jwks(&self, client_id: &str, jwks: &Value, by: Actor<'_>) -> Result<bool, DomainError> {
        let txn = crate::store::begin_write(&self.db).await?;
        let Some(row) = client::Entity::find_by_id(client_id.to_owned()).one(&txn).await? else {
            return Ok(false);
        };
        let mut m: client::ActiveModel = row.into();
        m.jwks = Set(Some(jwks.to_string()));
        m.update(&txn).await?;
        let subject = format!("client:{client_id}");
        let kids: Vec<&str> = jwks_keys(jwks).iter().filter_map(|k| k.get("kid").and_then(Value::as_str)).collect();
        let detail = format!("keys={} kids={}", jwks_keys(jwks).len(), kids.join(","));
        crate::domain::audit::record(
            &txn,
            Event::new("client_jwks_updated", by, &subject).detail(&detail),
            self.clock.now(),
        )
        .await?;
        txn.commit().await?;
        self.changed(client_id).await;
        Ok(true)
    }
}

/// The mutual-TLS settings of an app (RFC 8705), changed after creation;
/// none keeps what is registered.
#[derive(Debug, Clone, Default)]
pub struct MtlsSettings {
    /// `tls_client_auth` or `self_signed_tls_client_auth` (a secret the app
    /// had stops working).
    pub auth_method: Option<AuthMethod>,
    /// The `tls_client_auth_*` value (RFC 8705 §2.1.2), replacing the
    /// registered one.
    pub subject: Option<Map<String, Value>>,
    /// `tls_client_certificate_bound_access_tokens`.
    pub bound: Option<bool>,
}

impl ClientService {
    /// Changes how an app uses mutual TLS, with the rules of registration.
    /// `Ok(false)`: no such app; a rule broken is `Err` with what to fix.
    pub async fn update_mtls(&self, client_id: &str, s: &MtlsSettings, by: Actor<'_>) -> Result<bool, DomainError> {
        let invalid = |m: String| DomainError::Internal(anyhow::anyhow!(m));
        let txn = crate::store::begin_write(&self.db).await?;
        let Some(row) = client::Entity::find_by_id(client_id.to_owned()).one(&txn).await? else {
            return Ok(false);
        };
        if let Some(m) = s.auth_method
            && !m.is_mtls()
        {
            return Err(invalid(format!("{}: only the mutual-TLS methods are changed here", m.as_str())));
        }
        let old_method = AuthMethod::parse(&row.auth_method).unwrap_or(AuthMethod::ClientSecretBasic);
        let method = s.auth_method.unwrap_or(old_method);
        let mut meta: Map<String, Value> = match row.metadata.as_deref().and_then(|m| serde_json::from_str(m).ok()) {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        if let Some(subject) = &s.subject {
            meta.retain(|k, _| !mtls::SETTINGS.contains(&k.as_str()));
            meta.extend(subject.clone());
        } else if method != AuthMethod::TlsClientAuth {
            meta.retain(|k, _| !mtls::SETTINGS.contains(&k.as_str()));
        }
        mtls::check_registration(method == AuthMethod::TlsClientAuth, &meta).map_err(invalid)?;
        if method == AuthMethod::SelfSignedTlsClientAuth && row.jwks.is_none() && !meta.contains_key("jwks_uri") {
            return Err(invalid("self_signed_tls_client_auth needs the app's keys (jwks) first".into()));
        }
        let bound = s.bound.unwrap_or(row.tls_bound);
        if bound && row.dpop_bound {
            return Err(invalid("choose one sender constraint: DPoP or certificate-bound tokens".into()));
        }
        let detail = format!("auth_method={} tls_bound={bound}", method.as_str());
        let mut m: client::ActiveModel = row.into();
        if method != old_method {
            m.auth_method = Set(method.as_str().into());
            m.secret_hash = Set(None);
            m.old_secret_hash = Set(None);
            m.old_secret_until = Set(None);
        }
        m.metadata = Set((!meta.is_empty()).then(|| Value::Object(meta).to_string()));
        m.tls_bound = Set(bound);
        m.update(&txn).await?;
        let subject = format!("client:{client_id}");
        crate::domain::audit::record(
            &txn,
            Event::new("client_mtls_updated", by, &subject).detail(&detail),
            self.clock.now(),
        )
        .await?;
        txn.commit().await?;
        self.changed(client_id).await;
        Ok(true)
    }
}

fn jwks_keys(jwks: &Value) -> &[Value] {
    jwks.get("keys").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()
}

/// Why a JWK Set typed in the console is refused (locale key): not JSON,
/// no usable public key, a private key part, or too large.
pub fn check_jwks(text: &str) -> Result<Value, &'static str> {
    if text.len() > 64 * 1024 {
        return Err("admin_app_jwks_rule");
    }
    let v: Value = serde_json::from_str(text.trim()).map_err(|_| "admin_app_jwks_rule")?;
    let keys = jwks_keys(&v);
    if keys.is_empty() || keys.len() > 20 {
        return Err("admin_app_jwks_rule");
    }
    // A private key pasted by mistake must not be stored.
    if keys.iter().any(|k| ["d", "p", "q", "dp", "dq", "qi", "k"].iter().any(|f| k.get(*f).is_some())) {
        return Err("admin_app_jwks_private");
    }
    if !keys.iter().any(|k| crate::crypto::jws::PublicKey::from_jwk(k).is_some()) {
        return Err("admin_app_jwks_rule");
    }
    Ok(v)
}
