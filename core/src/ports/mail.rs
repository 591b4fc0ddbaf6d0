//! Mail gateway: SMTP through lettre for real delivery, and the same
//! development sink as SMS (messages stored in the database).
use crate::store::Store;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfig {
    /// `dev` (store in the database) or `smtp`.
    pub gateway: String,
    pub smtp_host: Option<String>,
    pub smtp_port: u16,
    pub smtp_user: Option<String>,
    pub smtp_password: Option<String>,
    /// `tls` (implicit, port 465), `starttls` (port 587), or `none` — plain
    /// SMTP, accepted only for a relay on loopback (a local MTA or tests).
    pub smtp_security: String,
    pub from: String,
    pub timeout_ms: u64,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            gateway: "dev".into(),
            smtp_host: None,
            smtp_port: 465,
            smtp_user: None,
            smtp_password: None,
            smtp_security: "tls".into(),
            from: "统一身份认证平台 <no-reply@localhost>".into(),
            timeout_ms: 5000,
        }
    }
}

#[derive(Clone)]
pub enum MailGateway {
    Dev(Store),
    Smtp { transport: AsyncSmtpTransport<Tokio1Executor>, from: Mailbox },
}

impl MailGateway {
    pub fn from_config(cfg: &MailConfig, db: Store) -> anyhow::Result<Self> {
        match cfg.gateway.as_str() {
            "dev" => Ok(MailGateway::Dev(db)),
            "smtp" => {
                let host = cfg
                    .smtp_host
                    .clone()
                    .ok_or_else(|| anyhow::anyhow!("mail.smtp_host is required with mail.gateway = \"smtp\""))?;
                let mut builder = match cfg.smtp_security.as_str() {
                    "tls" => AsyncSmtpTransport::<Tokio1Executor>::relay(&host)?,
                    "starttls" => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&host)?,
                    "none" if matches!(host.as_str(), "127.0.0.1" | "localhost" | "::1") => {
                        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&host)
                    }
                    "none" => anyhow::bail!("mail.smtp_security = \"none\" is allowed only for a loopback relay"),
                    other => anyhow::bail!("mail.smtp_security `{other}`: allowed tls, starttls, none (loopback only)"),
                };
                builder = builder.port(cfg.smtp_port).timeout(Some(Duration::from_millis(cfg.timeout_ms)));
                if let (Some(u), Some(p)) = (&cfg.smtp_user, &cfg.smtp_password) {
                    builder = builder.credentials(Credentials::new(u.clone(), p.clone()));
                }
                let from = cfg.from.parse::<Mailbox>().map_err(|e| anyhow::anyhow!("mail.from: {e}"))?;
                Ok(MailGateway::Smtp { transport: builder.build(), from })
            }
            other => anyhow::bail!("mail.gateway `{other}`: allowed dev, smtp"),
        }
    }

    pub async fn send(&self, to: &str, subject: &str, body: &str, purpose: &str, now: i64) -> anyhow::Result<()> {
        match self {
            MailGateway::Dev(db) => {
                Ok(super::sms::record(db, "mail", to, purpose, &format!("{subject}\n\n{body}"), now).await?)
            }
            MailGateway::Smtp { transport, from } => {
                let msg = Message::builder()
                    .from(from.clone())
                    .to(to.parse::<Mailbox>()?)
                    .subject(subject)
                    .body(body.to_string())?;
                transport.send(msg).await?;
                Ok(())
            }
        }
    }
}

/// A plausible e-mail address (the mail code proves it is real).
pub fn valid_address(address: &str) -> bool {
    address.len() <= 254 && address.parse::<Mailbox>().is_ok() && address.contains('@') && !address.contains(' ')
}
