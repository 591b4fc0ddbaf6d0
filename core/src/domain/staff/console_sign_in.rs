//! The console signs staff in as an OIDC client of this provider (issue 15).
//!
//! `/admin` without a console session sends the browser to `/authorize`
//! for the built-in first-party client [`CLIENT_ID`] (PKCE S256, `state`,
//! `nonce`, `acr_values` for L3, `max_age`), so the provider's own sign-in
//! and step-up enforce L3; the client's minimum level is 3 as well, so L3
//! is required, never skipped. The callback redeems the code through the
//! core, checks the ID token as a relying party would ([`check_id_token`]:
//! issuer, audience, nonce, `acr` ≥ 3, `auth_time` within `max_age`, a
//! strong method in `amr`) and then [`open`]s a console session: its own
//! short-lived cookie, separate from the SSO cookie, bound to the SSO
//! session it came from (a sign-out or suspension there ends it too), and
//! noting when the strong factor (passkey or authenticator app) was last
//! used — the console's gate and sensitive actions read that time.
use super::Staff;
use crate::crypto::{pkce_s256, random_token, sha256_b64};
use crate::domain::DomainError;
use crate::domain::assurance::{self, Factor, FactorEvent};
use crate::domain::audit::{Actor, Event};
use crate::domain::clients::admin::Settings;
use crate::domain::clients::{ClientService, NewClient};
use crate::store::Store;
use crate::store::entities::{console_session, session};
use sea_orm::{ActiveModelTrait, ColumnTrait, DbErr, EntityTrait, QueryFilter, Set};
use serde_json::{Map, Value};

/// The console's client id.
pub const CLIENT_ID: &str = "idp-console";
/// The console's redirect URI, on the provider's own issuer.
pub const CALLBACK: &str = "/admin/callback";
/// The level the console requires.
pub const LEVEL: u8 = 3;
/// A console session ends after this long whatever happens (a working day);
/// the strong factor must also stay within the L3 max age to enter.
pub const SESSION_SECONDS: i64 = 8 * 3600;
/// How long a started sign-in may take.
pub const FLOW_SECONDS: i64 = 600;

fn wanted(issuer: &str) -> Settings {
    Settings {
        name: "运营控制台 Operator console".into(),
        redirect_uris: vec![format!("{issuer}{CALLBACK}")],
        post_logout_redirect_uris: Vec::new(),
        allowed_scopes: "openid".into(),
        min_level: Some(LEVEL),
        skip_consent: true,
    }
}

/// Creates the console's client at start-up, or puts back its settings
/// (the redirect URI follows the issuer; L3 minimum; first-party consent
/// skip; enabled). A public client: PKCE, code grant only.
pub async fn ensure_client(clients: &ClientService, issuer: &str) -> Result<(), DomainError> {
    let w = wanted(issuer);
    match clients.find(CLIENT_ID).await? {
        None => {
            clients
                .create(NewClient {
                    name: w.name.clone(),
                    client_id: Some(CLIENT_ID.into()),
                    public: true,
                    redirect_uris: w.redirect_uris.clone(),
                    grant_types: Some(vec!["authorization_code".into()]),
                    scopes: Some(w.allowed_scopes.clone()),
                    skip_consent: true,
                    min_level: w.min_level,
                    ..NewClient::default()
                })
                .await?;
        }
        Some(c) => {
            let same = c.redirect_uris == w.redirect_uris
                && c.min_level == w.min_level
                && c.skip_consent
                && c.allowed_scopes == w.allowed_scopes;
            if !same {
                clients.update_settings(CLIENT_ID, &w, Actor::Operator("startup")).await?;
            }
            if c.disabled {
                clients.set_disabled(CLIENT_ID, false, Actor::Operator("startup")).await?;
            }
        }
    }
    Ok(())
}

/// A started console sign-in, kept in a short-lived cookie of the browser
/// that started it: `state`, `nonce`, the PKCE verifier and the local page
/// to return to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    pub state: String,
    pub nonce: String,
    pub verifier: String,
    pub next: String,
}

impl Flow {
    pub fn start(next: &str) -> Flow {
        Flow { state: random_token(24), nonce: random_token(24), verifier: random_token(48), next: next.to_string() }
    }

    /// The cookie value (the path base64url-encoded, so any character fits).
    pub fn to_cookie(&self) -> String {
        let next = crate::crypto::b64url(self.next.as_bytes());
        format!("{}.{}.{}.{}", self.state, self.nonce, self.verifier, next)
    }

    pub fn from_cookie(v: &str) -> Option<Flow> {
        if v.len() > 1200 {
            return None;
        }
        let mut parts = v.split('.');
        let (state, nonce, verifier, next) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let next = String::from_utf8(crate::crypto::b64url_decode(next)?).ok()?;
        if parts.next().is_some() || state.is_empty() || nonce.is_empty() || verifier.is_empty() {
            return None;
        }
        Some(Flow { state: state.into(), nonce: nonce.into(), verifier: verifier.into(), next })
    }

    /// The authorization request to this provider: code flow with PKCE
    /// S256, L3 asked for by `acr_values` (and required by the client's
    /// minimum), `max_age` the L3 max age.
    pub fn authorize_url(&self, issuer: &str, acr_prefix: &str, max_age: i64) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("response_type", "code")
            .append_pair("client_id", CLIENT_ID)
            .append_pair("redirect_uri", &format!("{issuer}{CALLBACK}"))
            .append_pair("scope", "openid")
            .append_pair("state", &self.state)
            .append_pair("nonce", &self.nonce)
            .append_pair("code_challenge", &pkce_s256(&self.verifier))
            .append_pair("code_challenge_method", "S256")
            .append_pair("acr_values", &assurance::acr(acr_prefix, LEVEL))
            .append_pair("max_age", &max_age.to_string());
        format!("{issuer}/authorize?{}", q.finish())
    }
}

/// Why a console sign-in is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The answer does not belong to this sign-in (state, nonce, audience,
    /// issuer, a malformed token): start again.
    Mismatch,
    /// Below L3: the account lacks the proofing or the session the factors.
    NotL3,
    /// L3, but without a fresh passkey or authenticator-app code: the
    /// console's step-up page asks for one.
    NoStrongFactor,
    /// The account holds no staff role (or is suspended).
    NotStaff,
}

/// What a relying party checks in the console's ID token (OIDC Core
/// §3.1.3.7): issuer, audience (and `azp`), nonce, `acr` at least L3,
/// `auth_time` present and within `max_age`, and a strong method (`otp`
/// for an authenticator app, `swk`/`hwk` for a passkey) in `amr`. The
/// signature and expiry are checked by the caller (`TokenIssuer::verify_own`).
pub struct IdTokenCheck<'a> {
    pub issuer: &'a str,
    pub nonce: &'a str,
    pub acr_prefix: &'a str,
    pub max_age: i64,
    pub now: i64,
}

pub fn check_id_token(claims: &Map<String, Value>, c: &IdTokenCheck<'_>) -> Result<(), Refusal> {
    let s = |k: &str| claims.get(k).and_then(Value::as_str);
    if s("iss") != Some(c.issuer) {
        return Err(Refusal::Mismatch);
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == CLIENT_ID,
        Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(CLIENT_ID)) && s("azp") == Some(CLIENT_ID),
        _ => false,
    };
    if !aud_ok || s("nonce") != Some(c.nonce) {
        return Err(Refusal::Mismatch);
    }
    let level = s("acr").and_then(|a| assurance::parse_acr(c.acr_prefix, a)).unwrap_or(0);
    if level < LEVEL {
        return Err(Refusal::NotL3);
    }
    let auth_time = claims.get("auth_time").and_then(Value::as_i64).ok_or(Refusal::Mismatch)?;
    if c.now - auth_time > c.max_age || auth_time > c.now + 5 {
        return Err(Refusal::NoStrongFactor);
    }
    let amr: Vec<&str> = claims
        .get("amr")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !amr.iter().any(|m| matches!(*m, "otp" | "swk" | "hwk")) {
        return Err(Refusal::NoStrongFactor);
    }
    Ok(())
}

/// When the session last used a strong factor (passkey or authenticator app).
pub fn strong_at(factors: &[FactorEvent]) -> Option<i64> {
    factors.iter().filter(|e| matches!(e.factor, Factor::Passkey | Factor::Totp)).map(|e| e.at).max()
}

/// A live console session.
#[derive(Debug, Clone)]
pub struct ConsoleSession {
    pub id_hash: String,
    pub user_id: String,
    pub sid: String,
    pub strong_at: i64,
}

async fn live_sso(db: &impl sea_orm::ConnectionTrait, sid: &str, now: i64) -> Result<Option<session::Model>, DbErr> {
    Ok(session::Entity::find()
        .filter(session::Column::Sid.eq(sid))
        .one(db)
        .await?
        .filter(|s| !s.revoked && s.expires_at > now))
}

/// Opens a console session after a checked ID token: the SSO session it
/// names must still be live and hold a passkey or authenticator-app use
/// within `max_age` (the amr claim lists methods, not when; the session
/// says when), and the account must hold a staff role. Returns the cookie
/// value; the session and its `console_signed_in` record commit together.
pub async fn open(
    db: &Store,
    user_id: &str,
    sid: &str,
    ip: Option<&str>,
    max_age: i64,
    now: i64,
) -> Result<Result<(String, Staff), Refusal>, DbErr> {
    let Some(staff) = super::load(db, user_id).await? else {
        return Ok(Err(Refusal::NotStaff));
    };
    let txn = crate::store::begin_write(db).await?;
    let Some(sso) = live_sso(&txn, sid, now).await?.filter(|s| s.user_id == user_id) else {
        return Ok(Err(Refusal::Mismatch));
    };
    let factors: Vec<FactorEvent> = serde_json::from_str(&sso.factors).unwrap_or_default();
    let Some(strong) = strong_at(&factors).filter(|t| now - t <= max_age) else {
        return Ok(Err(Refusal::NoStrongFactor));
    };
    let cookie = random_token(32);
    console_session::ActiveModel {
        id_hash: Set(sha256_b64(cookie.as_bytes())),
        user_id: Set(user_id.to_string()),
        sid: Set(sid.to_string()),
        strong_at: Set(strong),
        created_at: Set(now),
        expires_at: Set(now + SESSION_SECONDS),
    }
    .insert(&txn)
    .await?;
    let subject = format!("user:{user_id}");
    let detail = format!("client={CLIENT_ID}");
    let event = Event::new("console_signed_in", Actor::Staff(user_id), &subject).detail(&detail).ip(ip);
    crate::domain::audit::record(&txn, event, now).await?;
    txn.commit().await?;
    Ok(Ok((cookie, staff)))
}

/// The console session behind a cookie: unexpired, and the SSO session it
/// came from still live (signing out there, a forced sign-out or a
/// suspension end the console session too). Its strong factor is the later
/// of the console's own record and the SSO session's latest passkey or
/// authenticator-app use.
pub async fn find(db: &Store, cookie: &str, now: i64) -> Result<Option<ConsoleSession>, DbErr> {
    if cookie.is_empty() || cookie.len() > 128 {
        return Ok(None);
    }
    let Some(row) = console_session::Entity::find_by_id(sha256_b64(cookie.as_bytes())).one(db).await? else {
        return Ok(None);
    };
    if row.expires_at <= now {
        return Ok(None);
    }
    let Some(sso) = live_sso(db, &row.sid, now).await? else {
        return Ok(None);
    };
    // A strong factor used again in the same SSO session (a passkey or an
    // authenticator-app step-up on the provider's own pages) is as fresh
    // for the console as one typed on the console's step-up page.
    let factors: Vec<FactorEvent> = serde_json::from_str(&sso.factors).unwrap_or_default();
    let strong = strong_at(&factors).map_or(row.strong_at, |t| t.max(row.strong_at));
    Ok(Some(ConsoleSession { id_hash: row.id_hash, user_id: row.user_id, sid: row.sid, strong_at: strong }))
}

/// Signs out of the console: the session row goes, audited. The SSO
/// session of the provider is left alone (the staff member signed out of
/// the console, not of every app).
pub async fn close(db: &Store, cookie: &str, ip: Option<&str>, now: i64) -> Result<bool, DbErr> {
    let txn = crate::store::begin_write(db).await?;
    let hash = sha256_b64(cookie.as_bytes());
    let Some(row) = console_session::Entity::find_by_id(hash.clone()).one(&txn).await? else {
        return Ok(false);
    };
    console_session::Entity::delete_by_id(hash).exec(&txn).await?;
    let subject = format!("user:{}", row.user_id);
    let event = Event::new("console_signed_out", Actor::Staff(&row.user_id), &subject).ip(ip);
    crate::domain::audit::record(&txn, event, now).await?;
    txn.commit().await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(claims: Value) -> Result<(), Refusal> {
        let c = IdTokenCheck {
            issuer: "https://id.example",
            nonce: "n1",
            acr_prefix: "urn:idp:loa:",
            max_age: 1800,
            now: 10_000,
        };
        check_id_token(claims.as_object().unwrap(), &c)
    }

    #[test]
    fn id_token_checked_like_a_relying_party() {
        let good = json!({"iss": "https://id.example", "aud": CLIENT_ID, "nonce": "n1", "acr": "urn:idp:loa:3",
            "auth_time": 9_000, "amr": ["pwd", "otp", "mfa"]});
        assert_eq!(check(good.clone()), Ok(()));
        let with = |k: &str, v: Value| {
            let mut c = good.clone();
            c[k] = v;
            c
        };
        assert_eq!(check(with("nonce", json!("other"))), Err(Refusal::Mismatch));
        assert_eq!(check(with("aud", json!("someone-else"))), Err(Refusal::Mismatch));
        assert_eq!(check(with("iss", json!("https://evil.example"))), Err(Refusal::Mismatch));
        assert_eq!(check(with("acr", json!("urn:idp:loa:2"))), Err(Refusal::NotL3));
        assert_eq!(check(with("amr", json!(["pwd", "sms", "mfa"]))), Err(Refusal::NoStrongFactor));
        assert_eq!(check(with("auth_time", json!(1_000))), Err(Refusal::NoStrongFactor));
        assert_eq!(check(with("amr", json!(["swk", "user"]))), Ok(()));
    }

    #[test]
    fn flow_cookie_round_trips() {
        let f = Flow::start("/admin/people?q=a.b;c");
        assert_eq!(Flow::from_cookie(&f.to_cookie()), Some(f.clone()));
        assert!(Flow::from_cookie("a.b").is_none());
        let url = f.authorize_url("https://id.example", "urn:idp:loa:", 1800);
        assert!(url.contains("code_challenge_method=S256") && url.contains("acr_values=urn%3Aidp%3Aloa%3A3"));
        assert!(url.contains("max_age=1800") && !url.contains(&f.verifier));
    }
}
