//! Changing a registered app after creation (issue 15, G1): its settings
//! and a new secret. The caller (the console's `staff::apps`) checks who
//! may; these record the change with the actor they are given, in the
//! transaction that makes it, and drop the app from the cache at once.
use super::{ClientService, SECRET_PURPOSE, validate_redirect_uri};
use crate::crypto::random_token;
use crate::domain::audit::{Actor, Event};
use crate::domain::clients::scopes::SUPPORTED;
use crate::domain::error::DomainError;
use crate::store::entities::client;
use sea_orm::{ActiveModelTrait, EntityTrait, Set};

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
        self.forget(client_id);
        Ok(true)
    }

    /// Gives a confidential app a new secret, returned once; the old one
    /// stops working at once. `Ok(None)`: no such app, or a public one or
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
        let mut m: client::ActiveModel = row.into();
        m.secret_hash = Set(Some(self.hasher.digest(SECRET_PURPOSE, &secret)));
        m.update(&txn).await?;
        let subject = format!("client:{client_id}");
        crate::domain::audit::record(&txn, Event::new("client_secret_rotated", by, &subject), self.clock.now()).await?;
        txn.commit().await?;
        self.forget(client_id);
        Ok(Some(secret))
    }
}
