//! SMS gateway: Aliyun SMS and Tencent Cloud SMS (signed as each vendor
//! documents), a generic JSON-over-HTTP adapter, and a development sink
//! that stores every message in the database.
pub mod aliyun;
pub mod receipts;
pub mod tencent;

use crate::net::Traced;
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
    /// The vendor's own per-phone limit: nothing was delivered.
    #[error("SMS vendor rate limit: {0}")]
    RateLimited(String),
}

/// What one call to a vendor came to.
#[derive(Debug)]
pub enum Attempt {
    /// Accepted for delivery.
    Sent,
    /// The vendor did not take the message (busy, flow control, no
    /// connection): trying again cannot send it twice.
    Retry(String),
    /// Sent but the answer was lost: the vendor may have taken it, so it is
    /// not tried again (a citizen must not get two codes).
    Unknown(String),
    RateLimited(String),
    Refused(String),
}

/// A vendor's credentials and settings, taken from `[sms]`.
#[derive(Clone)]
pub struct VendorCreds {
    pub url: String,
    pub key_id: String,
    pub secret: String,
    pub sign_name: String,
    pub region: Option<String>,
    /// Tencent `SmsSdkAppId`.
    pub app_id: Option<String>,
    pub param_order: std::collections::BTreeMap<String, Vec<String>>,
}

/// Configuration of the real gateway (see docs/operations.md, "SMS").
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmsConfig {
    /// `dev` (store in the database), `aliyun`, `tencent` or `http`
    /// (also accepted as `kind`).
    #[serde(alias = "kind")]
    pub gateway: String,
    pub url: Option<String>,
    /// Sent as `Authorization: Bearer …`.
    pub token: Option<String>,
    /// Template id per purpose, e.g. `{ register = "SMS_1001" }`.
    pub templates: std::collections::BTreeMap<String, String>,
    pub timeout_ms: u64,
    /// Aliyun AccessKeyId / Tencent SecretId.
    pub access_key_id: Option<String>,
    /// Aliyun AccessKeySecret / Tencent SecretKey.
    pub access_key_secret: Option<String>,
    /// The approved signature (签名) shown in the message.
    pub sign_name: Option<String>,
    /// Aliyun `RegionId` (cn-hangzhou) / Tencent `X-TC-Region` (ap-guangzhou).
    pub region: Option<String>,
    /// Tencent `SmsSdkAppId`.
    pub sdk_app_id: Option<String>,
    /// Tencent: which of our parameters fill a purpose's template `{1}`,
    /// `{2}` …, e.g. `{ register = ["code", "minutes"] }`.
    pub param_order: std::collections::BTreeMap<String, Vec<String>>,
    /// The secret in the delivery-receipt callback URL given to the vendor
    /// (`/sms/receipts/{aliyun|tencent}?token=…`; neither vendor signs its
    /// pushes). Absent: receipts are not accepted.
    pub receipt_token: Option<String>,
}

impl Default for SmsConfig {
    fn default() -> Self {
        Self {
            gateway: "dev".into(),
            url: None,
            token: None,
            templates: Default::default(),
            timeout_ms: 3000,
            access_key_id: None,
            access_key_secret: None,
            sign_name: None,
            region: None,
            sdk_app_id: None,
            param_order: Default::default(),
            receipt_token: None,
        }
    }
}

/// Without the token and the secret key, so a logged config cannot leak them.
impl std::fmt::Debug for SmsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redact = |o: &Option<String>| o.as_ref().map(|_| "<redacted>");
        f.debug_struct("SmsConfig")
            .field("gateway", &self.gateway)
            .field("url", &self.url)
            .field("token", &redact(&self.token))
            .field("templates", &self.templates)
            .field("timeout_ms", &self.timeout_ms)
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &redact(&self.access_key_secret))
            .field("sign_name", &self.sign_name)
            .field("region", &self.region)
            .field("sdk_app_id", &self.sdk_app_id)
            .field("receipt_token", &redact(&self.receipt_token))
            .finish()
    }
}

impl SmsConfig {
    /// What is missing for the configured gateway: (key, message).
    pub fn problem(&self) -> Option<(&'static str, String)> {
        let vendor = |name: &str| {
            let need = |v: &Option<String>| v.as_deref().is_none_or(|s| s.trim().is_empty());
            if need(&self.access_key_id) {
                return Some(("sms.access_key_id", format!("required when sms.gateway = \"{name}\"")));
            }
            if need(&self.access_key_secret) {
                return Some(("sms.access_key_secret", format!("required when sms.gateway = \"{name}\"")));
            }
            if need(&self.sign_name) {
                return Some(("sms.sign_name", format!("required when sms.gateway = \"{name}\"")));
            }
            if self.templates.is_empty() {
                return Some(("sms.templates", "one template per purpose, e.g. { login = \"SMS_1001\" }".into()));
            }
            if let Some(bad) = self.templates.keys().find(|k| SmsPurpose::parse(k).is_none()) {
                return Some((
                    "sms.templates",
                    format!("`{bad}`: allowed register, login, reset_password, verify, notice, kin_notice"),
                ));
            }
            None
        };
        match self.gateway.as_str() {
            "dev" => None,
            "http" if self.url.is_some() => None,
            "http" => Some(("sms.url", "required when sms.gateway = \"http\"".into())),
            "aliyun" => vendor("aliyun"),
            "tencent" if self.sdk_app_id.as_deref().is_none_or(str::is_empty) => {
                Some(("sms.sdk_app_id", "required when sms.gateway = \"tencent\"".into()))
            }
            "tencent" => vendor("tencent"),
            other => Some(("sms.gateway", format!("`{other}`: allowed dev, aliyun, tencent, http"))),
        }
    }
}

#[derive(Clone)]
pub enum SmsGateway {
    Dev(Store),
    Http(HttpSms),
    Vendor(VendorSms),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vendor {
    Aliyun,
    Tencent,
}

/// A real SMS vendor (Aliyun or Tencent Cloud).
#[derive(Clone)]
pub struct VendorSms {
    vendor: Vendor,
    http: reqwest::Client,
    creds: VendorCreds,
    templates: std::collections::BTreeMap<String, String>,
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
            "aliyun" | "tencent" => {
                if let Some((key, message)) = cfg.problem() {
                    anyhow::bail!("{key}: {message}");
                }
                let vendor = if cfg.gateway == "aliyun" { Vendor::Aliyun } else { Vendor::Tencent };
                let default_url = if vendor == Vendor::Aliyun { aliyun::DEFAULT_URL } else { tencent::DEFAULT_URL };
                let http = reqwest::Client::builder().timeout(Duration::from_millis(cfg.timeout_ms)).build()?;
                let creds = VendorCreds {
                    url: cfg.url.clone().unwrap_or_else(|| default_url.into()),
                    key_id: cfg.access_key_id.clone().unwrap_or_default(),
                    secret: cfg.access_key_secret.clone().unwrap_or_default(),
                    sign_name: cfg.sign_name.clone().unwrap_or_default(),
                    region: cfg.region.clone(),
                    app_id: cfg.sdk_app_id.clone(),
                    param_order: cfg.param_order.clone(),
                };
                Ok(SmsGateway::Vendor(VendorSms { vendor, http, creds, templates: cfg.templates.clone() }))
            }
            other => anyhow::bail!("sms.gateway `{other}`: allowed dev, aliyun, tencent, http"),
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
            SmsGateway::Vendor(v) => v.send(msg, now).await,
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
            match req.traced().send().await {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) if r.status().is_client_error() => return Err(SmsError::Refused(r.status().to_string())),
                Ok(r) => last = r.status().to_string(),
                Err(e) => last = e.to_string(),
            }
        }
        Err(SmsError::Unavailable(last))
    }
}

impl VendorSms {
    /// Up to three calls with one idempotency key (Aliyun `OutId`, Tencent
    /// `SessionContext`, both echoed in delivery receipts); a new call is
    /// made only when the vendor said it did not take the message, so a
    /// retry never sends twice. Secrets never reach the log.
    async fn send(&self, msg: &SmsMessage, now: i64) -> Result<(), SmsError> {
        let Some(template) = self.templates.get(msg.purpose.as_str()) else {
            return Err(SmsError::Refused(format!("no template for purpose {}", msg.purpose.as_str())));
        };
        let key = crate::crypto::random_token(12);
        let mut last = String::new();
        for _ in 0..3 {
            let attempt = match self.vendor {
                Vendor::Aliyun => aliyun::send_once(&self.http, &self.creds, msg, template, &key, now).await,
                Vendor::Tencent => tencent::send_once(&self.http, &self.creds, msg, template, &key, now).await,
            };
            match attempt {
                Attempt::Sent => return Ok(()),
                Attempt::Retry(why) => {
                    tracing::info!("sms {:?}: not taken ({why}), trying again with the same key", self.vendor);
                    last = why;
                }
                Attempt::Unknown(why) => return Err(SmsError::Unavailable(why)),
                Attempt::RateLimited(code) => return Err(SmsError::RateLimited(code)),
                Attempt::Refused(code) => return Err(SmsError::Refused(code)),
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
