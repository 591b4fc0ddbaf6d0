//! SMS gateway: an HTTP adapter for a real provider and a development sink
//! that stores every message in the database.
use crate::store::Store;
use crate::store::entities::dev_message;
use sea_orm::{ActiveModelTrait, Set};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Why a message is sent; providers approve one template per purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmsPurpose {
    Register,
    Login,
    ResetPassword,
    Verify,
    Notice,
    /// Kin bindings: another user bound the same relative, or an
    /// operator decided a report. Its own template so the provider approves
    /// the wording once.
    KinNotice,
}

impl SmsPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            SmsPurpose::Register => "register",
            SmsPurpose::Login => "login",
            SmsPurpose::ResetPassword => "reset_password",
            SmsPurpose::Verify => "verify",
            SmsPurpose::Notice => "notice",
            SmsPurpose::KinNotice => "kin_notice",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "register" => SmsPurpose::Register,
            "login" => SmsPurpose::Login,
            "reset_password" => SmsPurpose::ResetPassword,
            "verify" => SmsPurpose::Verify,
            "notice" => SmsPurpose::Notice,
            "kin_notice" => SmsPurpose::KinNotice,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SmsMessage {
    pub phone: String,
    pub purpose: SmsPurpose,
    /// Template parameters, e.g. `{"code": "123456", "minutes": "5"}`.
    pub params: serde_json::Value,
    /// The rendered text (for the sink and for providers without templates).
    pub text: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SmsError {
    #[error("SMS gateway unavailable: {0}")]
    Unavailable(String),
    #[error("SMS gateway refused the message: {0}")]
    Refused(String),
}

/// Configuration of the real gateway (see docs/accounts.md, "SMS gateway").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmsConfig {
    /// `dev` (store in the database) or `http`.
    pub gateway: String,
    pub url: Option<String>,
    /// Sent as `Authorization: Bearer …`.
    pub token: Option<String>,
    /// Template id per purpose, e.g. `{ register = "SMS_1001" }`.
    pub templates: std::collections::BTreeMap<String, String>,
    pub timeout_ms: u64,
}

impl Default for SmsConfig {
    fn default() -> Self {
        Self { gateway: "dev".into(), url: None, token: None, templates: Default::default(), timeout_ms: 3000 }
    }
}

#[derive(Clone)]
pub enum SmsGateway {
    Dev(Store),
    Http(HttpSms),
}

#[derive(Clone)]
pub struct HttpSms {
    http: reqwest::Client,
    url: String,
    token: Option<String>,
    templates: std::collections::BTreeMap<String, String>,
}

impl SmsGateway {
    pub fn from_config(cfg: &SmsConfig, db: Store) -> anyhow::Result<Self> {
        match cfg.gateway.as_str() {
            "dev" => Ok(SmsGateway::Dev(db)),
            "http" => {
                let url = cfg
                    .url
                    .clone()
                    .ok_or_else(|| anyhow::anyhow!("sms.url is required with sms.gateway = \"http\""))?;
                let http = reqwest::Client::builder().timeout(Duration::from_millis(cfg.timeout_ms)).build()?;
                Ok(SmsGateway::Http(HttpSms { http, url, token: cfg.token.clone(), templates: cfg.templates.clone() }))
            }
            other => anyhow::bail!("sms.gateway `{other}`: allowed dev, http"),
        }
    }

    pub fn is_dev(&self) -> bool {
        matches!(self, SmsGateway::Dev(_))
    }

    pub async fn send(&self, msg: &SmsMessage, now: i64) -> Result<(), SmsError> {
        match self {
            SmsGateway::Dev(db) => record(db, "sms", &msg.phone, msg.purpose.as_str(), &msg.text, now)
                .await
                .map_err(|e| SmsError::Unavailable(e.to_string())),
            SmsGateway::Http(h) => h.send(msg).await,
        }
    }
}

/// Stores a message in the development sink.
pub async fn record(
    db: &Store,
    channel: &str,
    recipient: &str,
    purpose: &str,
    body: &str,
    now: i64,
) -> Result<(), sea_orm::DbErr> {
    dev_message::ActiveModel {
        // Time-ordered id (microseconds first) so "newest" is well defined
        // even for messages within one second.
        id: Set(format!("{:016x}{}", micros(), crate::crypto::random_token(6))),
        channel: Set(channel.into()),
        recipient: Set(recipient.into()),
        purpose: Set(purpose.into()),
        body: Set(body.into()),
        created_at: Set(now),
    }
    .insert(db)
    .await?;
    Ok(())
}

impl HttpSms {
    /// One JSON POST; a 5xx or timeout is retried once (same idempotency
    /// key, so a provider that deduplicates never sends twice).
    async fn send(&self, msg: &SmsMessage) -> Result<(), SmsError> {
        let body = serde_json::json!({
            "phone": msg.phone,
            "template": self.templates.get(msg.purpose.as_str()),
            "params": msg.params,
            "idempotency_key": crate::crypto::random_token(12),
        });
        let mut last = String::new();
        for _ in 0..2 {
            let mut req = self.http.post(&self.url).json(&body);
            if let Some(t) = &self.token {
                req = req.bearer_auth(t);
            }
            match req.send().await {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) if r.status().is_client_error() => return Err(SmsError::Refused(r.status().to_string())),
                Ok(r) => last = r.status().to_string(),
                Err(e) => last = e.to_string(),
            }
        }
        Err(SmsError::Unavailable(last))
    }
}

fn micros() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros()).unwrap_or(0)
}

/// What the development sink holds, newest first: `channel` is `sms`,
/// `mail` or `None` for both; `to` one recipient (the `idp dev messages`
/// command and the tests read the codes a citizen would receive).
pub async fn dev_messages(
    db: &Store,
    channel: Option<&str>,
    to: Option<&str>,
    limit: u64,
) -> Result<Vec<dev_message::Model>, sea_orm::DbErr> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
    let mut q = dev_message::Entity::find();
    if let Some(channel) = channel {
        q = q.filter(dev_message::Column::Channel.eq(channel));
    }
    if let Some(to) = to {
        q = q.filter(dev_message::Column::Recipient.eq(to));
    }
    q.order_by_desc(dev_message::Column::CreatedAt).order_by_desc(dev_message::Column::Id).limit(limit).all(db).await
}
