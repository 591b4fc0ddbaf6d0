//! CIBA — OpenID Client-Initiated Backchannel Authentication Core 1.0, poll
//! and ping modes — with the citizen app as the authentication device.
//!
//! A confidential client registered for the CIBA grant asks at
//! `/bc-authorize` that a person (named by `login_hint` or `id_token_hint`)
//! approve a sign-in. The request becomes a scan ticket of purpose
//! `ciba` for that person (`domain::authn::scan`): the signed-in citizen app
//! lists it, reads it (client name, binding message, the data asked for,
//! where the request came from) and confirms or denies it through the same
//! scan API and the same rules as a scanned QR code — including the
//! verifier's face pass when the level asked for needs a face check. The
//! ticket's `browser` is the keyed digest of the `auth_req_id`: only the
//! holder of the `auth_req_id` takes it, once, at `/token`.
//!
//! The `auth_req_id` is stored only as a digest; in ping mode it is sealed
//! under the master key together with the client's notification token, and
//! opened once to tell the client (`decided`).
use crate::crypto::keys::KeyVault;
use crate::crypto::{SecretHasher, random_token};
use crate::domain::assurance::{self, AssuranceConfig, Factor, FactorEvent};
use crate::domain::audit::{self, Actor, Event};
use crate::domain::authn::scan::{self, NewTicket, Phase, Purpose};
use crate::domain::clients::scopes::ScopeSet;
use crate::domain::clients::{Client, NewClient};
use crate::domain::error::{DomainResult, OAuthError};
use crate::domain::identity::users::UserService;
use crate::domain::tokens::TokenIssuer;
use crate::domain::tokens::grants::{self, NewGrant};
use crate::store::Store;
use crate::store::entities::{ciba_request, grant};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, DbErr, EntityTrait, QueryFilter, Set};
use serde_json::{Value, json};

pub const GRANT_TYPE: &str = "urn:openid:params:grant-type:ciba";
pub const POLL: &str = "poll";
pub const PING: &str = "ping";
/// The delivery modes offered (push is not: tokens never leave by a callback).
pub const MODES: [&str; 2] = [POLL, PING];
const PURPOSE: &str = "ciba_auth_req_id";
/// How long a request lives without `requested_expiry`, and at most.
pub const DEFAULT_EXPIRY: i64 = 300;
pub const MAX_EXPIRY: i64 = 600;
/// The first polling interval, and what a too-early poll adds to it.
pub const INTERVAL: i64 = 5;
const SLOW_DOWN: i64 = 5;
/// What the app can show on one line next to the client's name.
const BINDING_MESSAGE_MAX: usize = 64;
const NOTIFICATION_TOKEN_MAX: usize = 1024;

/// Checks a new client's CIBA registration; the delivery mode to store
/// (`poll` unless it asks for `ping`).
pub fn registration(new: &NewClient) -> Result<Option<String>, String> {
    let mode = new.backchannel_token_delivery_mode.as_deref().unwrap_or(POLL);
    if !MODES.contains(&mode) {
        return Err(format!("backchannel_token_delivery_mode `{mode}`: allowed poll, ping"));
    }
    match (mode, new.backchannel_client_notification_endpoint.as_deref()) {
        (PING, None) => Err("ping mode needs backchannel_client_notification_endpoint".into()),
        (PING, Some(uri)) => {
            let u = url::Url::parse(uri).map_err(|e| format!("backchannel_client_notification_endpoint: {e}"))?;
            let loopback = matches!(u.host_str(), Some("127.0.0.1") | Some("[::1]") | Some("localhost"));
            let clean = u.fragment().is_none() && u.username().is_empty() && u.password().is_none();
            if !clean || !(u.scheme() == "https" || (u.scheme() == "http" && loopback)) {
                return Err(format!("backchannel_client_notification_endpoint `{uri}` must be an https URL"));
            }
            Ok(Some(PING.into()))
        }
        (_, Some(_)) => Err("backchannel_client_notification_endpoint is only for ping mode".into()),
        (_, None) => Ok(Some(mode.into())),
    }
}

/// The parameters of `/bc-authorize` (CIBA Core §7.1), as sent.
#[derive(Debug, Default, Clone, Copy)]
pub struct AuthRequest<'a> {
    pub scope: Option<&'a str>,
    pub login_hint: Option<&'a str>,
    pub id_token_hint: Option<&'a str>,
    pub login_hint_token: Option<&'a str>,
    pub binding_message: Option<&'a str>,
    pub acr_values: Option<&'a str>,
    pub requested_expiry: Option<&'a str>,
    pub client_notification_token: Option<&'a str>,
    /// Where the request came from (shown in the app).
    pub requester_ip: &'a str,
}

/// The answer of `/bc-authorize` (CIBA Core §7.3).
#[derive(Debug)]
pub struct Started {
    pub auth_req_id: String,
    pub expires_in: i64,
    pub interval: i64,
}

/// What ping mode sends (CIBA Core §10.2), once per request.
#[derive(Debug)]
pub struct Ping {
    pub endpoint: String,
    pub token: String,
    pub auth_req_id: String,
}

/// What `/bc-authorize` and the CIBA grant need besides the store.
#[derive(Clone, Copy)]
pub struct Settings<'a> {
    pub acr_prefix: &'a str,
    pub assurance: &'a AssuranceConfig,
    pub refresh_token_ttl: i64,
}

#[derive(Clone)]
pub struct CibaService {
    db: Store,
    hasher: SecretHasher,
    vault: KeyVault,
}

fn err(code: &'static str, description: &str) -> crate::domain::error::DomainError {
    OAuthError::new(code, description).into()
}

/// CIBA Core §7.1: a short text the app and the consumption device both
/// show, so the person can tell the request is theirs.
fn binding_message(raw: Option<&str>) -> DomainResult<Option<String>> {
    let Some(m) = raw.map(str::trim).filter(|m| !m.is_empty()) else { return Ok(None) };
    if m.chars().count() > BINDING_MESSAGE_MAX || m.chars().any(char::is_control) {
        return Err(err(
            "invalid_binding_message",
            &format!("binding_message: at most {BINDING_MESSAGE_MAX} characters, no control characters"),
        ));
    }
    Ok(Some(m.to_string()))
}

/// The level of the first `acr` value this provider knows (`urn:idp:loa:3`).
fn requested_level(prefix: &str, acr_values: Option<&str>) -> Option<u8> {
    acr_values?.split_whitespace().find_map(|v| assurance::parse_acr(prefix, v))
}

impl CibaService {
    pub fn new(db: Store, hasher: SecretHasher, master: &[u8; 32]) -> Self {
        Self { db, hasher, vault: KeyVault::for_purpose(master, b"idp ciba ping v1") }
    }

    /// The person the request names: exactly one hint, an active account.
    async fn person(
        &self,
        tokens: &TokenIssuer,
        users: &UserService,
        client: &Client,
        req: &AuthRequest<'_>,
    ) -> DomainResult<String> {
        let unknown = || err("unknown_user_id", "the hint does not name an active account");
        let user = match (req.login_hint, req.id_token_hint, req.login_hint_token) {
            (Some(hint), None, None) => users.find_by_login(hint).await?,
            (None, Some(hint), None) => {
                // An ID token this provider issued to this client (expired is
                // fine: it names the person, it proves nothing).
                let claims = tokens
                    .verify_own(hint, "JWT", true)
                    .ok_or_else(|| OAuthError::invalid_request("id_token_hint is not an ID token of this provider"))?;
                let for_client = match claims.get("aud") {
                    Some(Value::String(a)) => a == &client.client_id,
                    Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(client.client_id.as_str())),
                    _ => false,
                };
                if !for_client {
                    return Err(OAuthError::invalid_request("id_token_hint was issued to another client").into());
                }
                let sub = claims.get("sub").and_then(Value::as_str).unwrap_or_default();
                match crate::domain::tokens::subjects::account_for_in(&self.db, client.pairwise_sector(), sub).await? {
                    Some(id) => users.find(&id).await?,
                    None => None,
                }
            }
            (None, None, Some(_)) => {
                return Err(OAuthError::invalid_request("login_hint_token is not supported: use login_hint").into());
            }
            _ => {
                return Err(
                    OAuthError::invalid_request("exactly one of login_hint and id_token_hint is required").into()
                );
            }
        };
        match user {
            Some(u) if !u.disabled => Ok(u.id),
            _ => Err(unknown()),
        }
    }

    /// `/bc-authorize`: checks the request, then creates the ticket the
    /// app decides and the request the client redeems, with its audit
    /// record, in one transaction.
    pub async fn start(
        &self,
        tokens: &TokenIssuer,
        users: &UserService,
        client: &Client,
        req: AuthRequest<'_>,
        settings: Settings<'_>,
        now: i64,
    ) -> DomainResult<Started> {
        if client.is_public() || !client.allows_grant(GRANT_TYPE) {
            return Err(OAuthError::unauthorized_client("this client is not registered for CIBA").into());
        }
        let mode = client.backchannel_token_delivery_mode.as_deref().unwrap_or(POLL);
        let scope = ScopeSet::parse(req.scope.unwrap_or_default());
        if !scope.contains("openid") {
            return Err(OAuthError::invalid_request("scope must include openid").into());
        }
        if !scope.is_subset_of(&client.scopes()) {
            return Err(OAuthError::invalid_scope("a requested scope is not allowed for this client").into());
        }
        let notification_token = match (mode, req.client_notification_token) {
            (PING, None) => {
                return Err(OAuthError::invalid_request("client_notification_token is required in ping mode").into());
            }
            (PING, Some(t)) if t.len() > NOTIFICATION_TOKEN_MAX || t.chars().any(|c| c.is_control()) => {
                return Err(OAuthError::invalid_request("client_notification_token is malformed").into());
            }
            (PING, Some(t)) => Some(t),
            _ => None,
        };
        let message = binding_message(req.binding_message)?;
        let expires_in = match req.requested_expiry {
            None => DEFAULT_EXPIRY,
            Some(raw) => match raw.trim().parse::<i64>() {
                Ok(n) if n > 0 => n.min(MAX_EXPIRY),
                _ => return Err(OAuthError::invalid_request("requested_expiry must be a positive integer").into()),
            },
        };
        let user_id = self.person(tokens, users, client, &req).await?;
        // The level asked for decides whether the app must run a face
        // check: above L2 the app's confirmation (possession) is not enough.
        let level = requested_level(settings.acr_prefix, req.acr_values).max(client.min_level).unwrap_or(1);
        let face_required = level >= 3;
        let auth_req_id = random_token(32);
        let hash = self.hasher.digest(PURPOSE, &auth_req_id);
        let scopes: Vec<&str> = scope.iter().collect();
        let mut detail = json!({ "scope": scopes });
        if let Some(m) = &message {
            detail["binding_message"] = json!(m);
        }
        if level > 1 {
            detail["acr"] = json!(assurance::acr(settings.acr_prefix, level));
        }
        let detail = detail.to_string();
        let sealed = match notification_token {
            Some(token) => {
                let plain = json!({ "auth_req_id": auth_req_id, "token": token }).to_string();
                Some(
                    self.vault
                        .seal(plain.as_bytes(), hash.as_bytes())
                        .map_err(crate::domain::error::DomainError::Internal)?,
                )
            }
            None => None,
        };
        let txn = crate::store::begin_write(&self.db).await?;
        let ticket = scan::create_in(
            &txn,
            NewTicket {
                purpose: Purpose::Backchannel,
                browser_hash: &hash,
                browser_ip: req.requester_ip,
                req: None,
                client_id: Some(&client.client_id),
                subject_user_id: Some(&user_id),
                detail: Some(&detail),
                gate_id: None,
            },
            face_required,
            now + expires_in,
            now,
        )
        .await?;
        ciba_request::ActiveModel {
            auth_req_hash: Set(hash),
            ticket_id: Set(ticket.id),
            client_id: Set(client.client_id.clone()),
            user_id: Set(user_id.clone()),
            scope: Set(scope.to_string_joined()),
            mode: Set(mode.into()),
            notification_endpoint: Set(client
                .backchannel_client_notification_endpoint
                .clone()
                .filter(|_| mode == PING)),
            ping_sealed: Set(sealed),
            interval_secs: Set(INTERVAL),
            last_poll_at: Set(None),
            notified_at: Set(None),
            created_at: Set(now),
            expires_at: Set(now + expires_in),
        }
        .insert(&txn)
        .await?;
        let subject = format!("client:{}", client.client_id);
        let what = format!("mode={mode} scope={} face_required={face_required}", scope.to_string_joined());
        let event =
            Event::new("ciba_requested", Actor::User(&user_id), &subject).detail(&what).ip(Some(req.requester_ip));
        audit::record(&txn, event, now).await?;
        txn.commit().await?;
        Ok(Started { auth_req_id, expires_in, interval: INTERVAL })
    }

    /// The CIBA grant at `/token` (CIBA Core §10.1, §11): the approved
    /// request, taken once, as a grant; or the error the client acts on.
    pub async fn redeem(
        &self,
        client: &Client,
        auth_req_id: &str,
        settings: Settings<'_>,
        now: i64,
    ) -> DomainResult<grant::Model> {
        let hash = self.hasher.digest(PURPOSE, auth_req_id);
        let row = ciba_request::Entity::find_by_id(hash.clone()).one(&self.db).await?;
        let Some(row) = row.filter(|r| r.client_id == client.client_id) else {
            return Err(OAuthError::invalid_grant("unknown auth_req_id").into());
        };
        let Some(ticket) = scan::for_browser(&self.db, &row.ticket_id, &hash).await? else {
            return Err(OAuthError::invalid_grant("unknown auth_req_id").into());
        };
        match ticket.phase(now) {
            Phase::Used => return Err(OAuthError::invalid_grant("the auth_req_id was already used").into()),
            Phase::Expired => return Err(err("expired_token", "the auth_req_id has expired")),
            _ if row.expires_at <= now => return Err(err("expired_token", "the auth_req_id has expired")),
            _ => {}
        }
        // CIBA Core §11: polling faster than the interval slows the client down.
        let early = row.last_poll_at.is_some_and(|at| now < at + row.interval_secs);
        let mut update = ciba_request::Entity::update_many()
            .col_expr(ciba_request::Column::LastPollAt, Expr::value(now))
            .filter(ciba_request::Column::AuthReqHash.eq(hash.clone()));
        if early {
            update = update.col_expr(ciba_request::Column::IntervalSecs, Expr::value(row.interval_secs + SLOW_DOWN));
        }
        update.exec(&self.db).await?;
        if early {
            return Err(err("slow_down", "poll less often"));
        }
        match ticket.phase(now) {
            Phase::Pending | Phase::Scanned => {
                return Err(err("authorization_pending", "the person has not decided yet"));
            }
            Phase::Denied => return Err(err("access_denied", "the person refused")),
            _ => {}
        }
        // One conditional UPDATE decides between two polls, on any node.
        let Some(ticket) = scan::consume(&self.db, &row.ticket_id, &hash, now).await? else {
            return Err(OAuthError::invalid_grant("the auth_req_id was already used").into());
        };
        let decided_at = ticket.updated_at;
        let mut events = vec![FactorEvent { factor: Factor::Scan, at: decided_at }];
        if ticket.face_passed {
            events.push(FactorEvent { factor: Factor::Face, at: decided_at });
        }
        let proofing = assurance::proofing_level(&self.db, &row.user_id).await?;
        let level = assurance::level(proofing, &events, now, settings.assurance);
        if client.min_level.is_some_and(|min| level < min) {
            return Err(err("access_denied", "the person could not reach the level this client requires"));
        }
        let g = grants::create_direct(
            &self.db,
            NewGrant {
                client_id: client.client_id.clone(),
                user_id: row.user_id.clone(),
                sid: None,
                scope: row.scope,
                claims: None,
                nonce: None,
                auth_time: decided_at,
                acr: assurance::acr(settings.acr_prefix, level),
                amr: assurance::amr(&events),
                enterprise_id: None,
                delegation_id: None,
                sector: client.pairwise_sector().map(str::to_string),
            },
            settings.refresh_token_ttl,
            now,
        )
        .await?;
        Ok(g)
    }

    /// The person decided the request behind `ticket_id`: in ping mode,
    /// what to tell the client, handed out once (one conditional UPDATE).
    pub async fn decided(&self, ticket_id: &str, now: i64) -> Result<Option<Ping>, DbErr> {
        let Some(row) = ciba_request::Entity::find()
            .filter(ciba_request::Column::TicketId.eq(ticket_id))
            .filter(ciba_request::Column::Mode.eq(PING))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let (Some(endpoint), Some(sealed)) = (row.notification_endpoint, row.ping_sealed) else {
            return Ok(None);
        };
        let taken = ciba_request::Entity::update_many()
            .col_expr(ciba_request::Column::NotifiedAt, Expr::value(now))
            .filter(ciba_request::Column::AuthReqHash.eq(row.auth_req_hash.clone()))
            .filter(ciba_request::Column::NotifiedAt.is_null())
            .exec(&self.db)
            .await?;
        if taken.rows_affected != 1 {
            return Ok(None);
        }
        let opened =
            self.vault.open(&sealed, row.auth_req_hash.as_bytes()).map_err(|e| DbErr::Custom(e.to_string()))?;
        let v: Value = serde_json::from_slice(&opened).map_err(|e| DbErr::Custom(e.to_string()))?;
        let text = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        Ok(Some(Ping { endpoint, token: text("token"), auth_req_id: text("auth_req_id") }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding_messages_are_short_plain_text() {
        assert_eq!(binding_message(Some("  W4SCT ")).ok().flatten().as_deref(), Some("W4SCT"));
        assert!(binding_message(None).ok().flatten().is_none());
        assert!(binding_message(Some(&"字".repeat(64))).is_ok());
        assert!(binding_message(Some(&"字".repeat(65))).is_err());
        assert!(binding_message(Some("line\nbreak")).is_err());
    }

    #[test]
    fn the_first_known_acr_value_counts() {
        let p = "urn:idp:loa:";
        assert_eq!(requested_level(p, Some("urn:other:x urn:idp:loa:3 urn:idp:loa:2")), Some(3));
        assert_eq!(requested_level(p, Some("urn:other:x")), None);
        assert_eq!(requested_level(p, None), None);
    }

    #[test]
    fn registration_checks_mode_and_endpoint() {
        let mut c = NewClient::default();
        assert_eq!(registration(&c).ok().flatten().as_deref(), Some(POLL));
        c.backchannel_token_delivery_mode = Some("push".into());
        assert!(registration(&c).is_err());
        c.backchannel_token_delivery_mode = Some(PING.into());
        assert!(registration(&c).is_err(), "ping needs an endpoint");
        c.backchannel_client_notification_endpoint = Some("http://rp.example/cb".into());
        assert!(registration(&c).is_err(), "plain http only on loopback");
        c.backchannel_client_notification_endpoint = Some("https://rp.example/cb".into());
        assert_eq!(registration(&c).ok().flatten().as_deref(), Some(PING));
    }
}
