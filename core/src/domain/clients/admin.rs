//! Changing a registered app after creation (issue 15, G1): its settings
//! and a new secret. The caller (the console's `staff::apps`) checks who
//! may; these record the change with the actor they are given, in the
//! transaction that makes it, and drop the app from the cache at once.
use super::{AuthMethod, Client, ClientService, SECRET_PURPOSE, mtls, validate_redirect_uri};
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

/// How an app authenticates at the token endpoint, as an operator sets it
/// (a confidential app only: a public app stays public).
#[derive(Debug, Clone)]
pub struct KeyAuth {
    pub method: AuthMethod,
    /// An inline JWK Set (`private_key_jwt`), as typed.
    pub jwks: Option<String>,
    /// Or where the app publishes its keys (https).
    pub jwks_uri: Option<String>,
}

/// The checked change: the method and, for `private_key_jwt`, either keys
/// or where to fetch them.
#[derive(Debug, Clone)]
pub struct CheckedAuth {
    pub method: AuthMethod,
    pub jwks: Option<Value>,
    pub jwks_uri: Option<String>,
}

/// Why an authentication change is refused (locale key), for the app as it
/// is: only the secret methods and `private_key_jwt`; a public app stays
/// public and a FAPI 2.0 app keeps `private_key_jwt`; keys by exactly one
/// of an inline JWK Set ([`jwks_rule`]) or an https `jwks_uri`.
pub fn check_auth(current: &Client, a: &KeyAuth) -> Result<CheckedAuth, &'static str> {
    if !matches!(a.method, AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost | AuthMethod::PrivateKeyJwt) {
        return Err("admin_app_auth_rule");
    }
    if current.is_public() {
        return Err("admin_app_auth_public");
    }
    if current.is_fapi2() && a.method != AuthMethod::PrivateKeyJwt {
        return Err("admin_app_auth_fapi");
    }
    if a.method != AuthMethod::PrivateKeyJwt {
        return Ok(CheckedAuth { method: a.method, jwks: None, jwks_uri: None });
    }
    let jwks = a.jwks.as_deref().map(str::trim).filter(|t| !t.is_empty());
    let uri = a.jwks_uri.as_deref().map(str::trim).filter(|t| !t.is_empty());
    match (jwks, uri) {
        (Some(_), Some(_)) => Err("admin_app_jwks_both"),
        (None, None) => Err("admin_app_jwks_required"),
        (Some(text), None) => Ok(CheckedAuth { method: a.method, jwks: Some(check_jwks(text)?), jwks_uri: None }),
        (None, Some(u)) => {
            super::https_or_loopback(u).map_err(|_| "admin_app_jwks_uri_rule")?;
            if u.len() > 2048 {
                return Err("admin_app_jwks_uri_rule");
            }
            Ok(CheckedAuth { method: a.method, jwks: None, jwks_uri: Some(u.to_string()) })
        }
    }
}

impl ClientService {
    /// Changes how an app authenticates at the token endpoint (see
    /// [`check_auth`]). Moving to `private_key_jwt` ends the secret (and
    /// its grace) at once; moving from it to a secret method issues a new
    /// secret, returned once (`Some(Some(secret))`); between the two secret
    /// methods the secret stays. `Ok(None)`: no such app.
    pub async fn set_auth(
        &self,
        client_id: &str,
        a: &KeyAuth,
        by: Actor<'_>,
    ) -> Result<Option<Option<String>>, DomainError> {
        let Some(current) = self.find(client_id).await? else {
            return Ok(None);
        };
        let checked = check_auth(&current, a).map_err(|k| DomainError::Internal(anyhow::anyhow!(k)))?;
        let txn = crate::store::begin_write(&self.db).await?;
        let Some(row) = client::Entity::find_by_id(client_id.to_owned()).one(&txn).await? else {
            return Ok(None);
        };
        let mut meta = match row.metadata.as_deref().and_then(|j| serde_json::from_str::<Value>(j).ok()) {
            Some(Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        let had_secret = row.secret_hash.is_some();
        let mut m: client::ActiveModel = row.into();
        let mut secret = None;
        if checked.method == AuthMethod::PrivateKeyJwt {
            m.secret_hash = Set(None);
            m.old_secret_hash = Set(None);
            m.old_secret_until = Set(None);
            m.jwks = Set(checked.jwks.as_ref().map(Value::to_string));
            meta.remove("jwks_uri");
            if let Some(u) = &checked.jwks_uri {
                meta.insert("jwks_uri".into(), u.clone().into());
            }
        } else {
            if !had_secret {
                let s = random_token(32);
                m.secret_hash = Set(Some(self.hasher.digest(SECRET_PURPOSE, &s)));
                secret = Some(s);
            }
            m.jwks = Set(None);
            meta.remove("jwks_uri");
        }
        m.auth_method = Set(checked.method.as_str().into());
        m.metadata = Set((!meta.is_empty()).then(|| Value::Object(meta).to_string()));
        m.update(&txn).await?;
        let subject = format!("client:{client_id}");
        let keys = checked.jwks.as_ref().map(|j| jwks_keys(j).len()).unwrap_or(0);
        let detail = format!(
            "auth_method={} keys={keys} jwks_uri={} new_secret={}",
            checked.method.as_str(),
            checked.jwks_uri.as_deref().unwrap_or("-"),
            secret.is_some()
        );
        crate::domain::audit::record(
            &txn,
            Event::new("client_auth_updated", by, &subject).detail(&detail),
            self.clock.now(),
        )
        .await?;
        txn.commit().await?;
        self.changed(client_id).await;
        Ok(Some(secret))
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

/// What became of a mutual-TLS change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MtlsUpdate {
    Done,
    NoSuchApp,
    /// A rule broken (locale key: what to fix); nothing changed.
    Refused(&'static str),
}

impl ClientService {
    /// Changes how an app uses mutual TLS, with the rules of registration:
    /// only the mutual-TLS methods here, a public app stays public; exactly one
    /// well-formed certificate subject for `tls_client_auth`; keys first for
    /// `self_signed_tls_client_auth`; certificate-bound tokens or DPoP, not
    /// both. The one place every path (CLI, console, admin API) changes it.
    pub async fn update_mtls(
        &self,
        client_id: &str,
        s: &MtlsSettings,
        by: Actor<'_>,
    ) -> Result<MtlsUpdate, sea_orm::DbErr> {
        use MtlsUpdate::Refused;
        let txn = crate::store::begin_write(&self.db).await?;
        let Some(row) = client::Entity::find_by_id(client_id.to_owned()).one(&txn).await? else {
            return Ok(MtlsUpdate::NoSuchApp);
        };
        if s.auth_method.is_some_and(|m| !m.is_mtls()) {
            return Ok(Refused("admin_app_mtls_method"));
        }
        let old_method = AuthMethod::parse(&row.auth_method).unwrap_or(AuthMethod::ClientSecretBasic);
        // A public app may still have certificate-bound tokens (RFC 8705
        // §4), but it does not start authenticating.
        if old_method == AuthMethod::None && s.auth_method.is_some() {
            return Ok(Refused("admin_app_auth_public"));
        }
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
        if mtls::check_registration(method == AuthMethod::TlsClientAuth, &meta).is_err() {
            return Ok(Refused("admin_app_mtls_subject"));
        }
        if method == AuthMethod::SelfSignedTlsClientAuth && row.jwks.is_none() && !meta.contains_key("jwks_uri") {
            return Ok(Refused("admin_app_mtls_keys"));
        }
        let bound = s.bound.unwrap_or(row.tls_bound);
        if bound && row.dpop_bound {
            return Ok(Refused("admin_app_mtls_dpop"));
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
        Ok(MtlsUpdate::Done)
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
    jwks_rule(&v)?;
    Ok(v)
}

/// The one rule for a client's JWK Set (console, admin API, CLI, dynamic
/// registration): 1 to 20 keys, no private or symmetric key part, every
/// named `alg` one we verify (ES256, PS256, RS256), and at least one usable
/// EC P-256 or RSA public key. `Err` is a locale key.
pub fn jwks_rule(v: &Value) -> Result<(), &'static str> {
    let keys = jwks_keys(v);
    if keys.is_empty() || keys.len() > 20 {
        return Err("admin_app_jwks_rule");
    }
    // A private key pasted by mistake must not be stored.
    if keys.iter().any(|k| ["d", "p", "q", "dp", "dq", "qi", "k"].iter().any(|f| k.get(*f).is_some())) {
        return Err("admin_app_jwks_private");
    }
    let alg_ok = |k: &Value| match k.get("alg") {
        None => true,
        Some(Value::String(a)) => crate::crypto::jws::Alg::parse(a).is_some(),
        Some(_) => false,
    };
    if !keys.iter().all(alg_ok) {
        return Err("admin_app_jwks_alg");
    }
    if !keys.iter().any(|k| crate::crypto::jws::PublicKey::from_jwk(k).is_some()) {
        return Err("admin_app_jwks_rule");
    }
    Ok(())
}
