//! Dynamic client registration (RFC 7591) and its management protocol
//! (RFC 7592), behind `protocol.registration`. Off by default. A client
//! registers only with an initial access token an administrator issued
//! (`idp client initial-token`), stored as a keyed digest with its uses left
//! and expiry; the uses are spent by one conditional UPDATE in the same
//! transaction that inserts the client, so two registrations cannot both
//! spend a single-use token. What may be registered is limited by the
//! policy: redirect URIs (https, optionally only on listed hosts), grant and
//! response types, authentication methods, built-in scopes (never plugin or
//! administrator-granted scopes: those need an administrator's grant) and
//! signing algorithms. A registered client gets a registration access token
//! (only its digest is kept) to read, replace and delete its registration.
use super::{AuthMethod, Client, ClientService, NewClient, Prepared, SECRET_PURPOSE, validate_redirect_uri};
use crate::config::RegistrationPolicy;
use crate::crypto::{SecretHasher, jws, random_token};
use crate::domain::audit::{Actor, Event};
use crate::domain::clients::scopes;
use crate::domain::error::{DomainError, DomainResult, OAuthError};
use crate::store::Store;
use crate::store::entities::{client, initial_access_token};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde_json::{Map, Value, json};

/// Digest purposes: a registration access token can never pass as an
/// initial access token or a client secret, nor the other way round.
const RAT_PURPOSE: &str = "registration_access_token";
const INITIAL_PURPOSE: &str = "initial_access_token";

/// Where clients register, under the issuer (`/register` is the people's
/// sign-up page).
pub const ENDPOINT: &str = "/oauth/register";

/// Metadata a client may not send when replacing its registration
/// (RFC 7592 §2.2).
const SERVER_FIELDS: &[&str] =
    &["registration_access_token", "registration_client_uri", "client_id_issued_at", "client_secret_expires_at"];

/// Metadata kept as registered, besides what has a column of its own.
const KEPT: &[&str] = &[
    "jwks_uri",
    "userinfo_signed_response_alg",
    "introspection_signed_response_alg",
    "request_object_signing_alg",
    "token_endpoint_auth_signing_alg",
    "client_uri",
    "logo_uri",
    "policy_uri",
    "tos_uri",
    "contacts",
    "software_id",
    "software_version",
    // RFC 8705 §2.1.2
    "tls_client_auth_subject_dn",
    "tls_client_auth_san_dns",
    "tls_client_auth_san_uri",
    "tls_client_auth_san_ip",
    "tls_client_auth_san_email",
];

/// Metadata whose value is a signing algorithm the policy must allow.
const ALG_FIELDS: &[&str] = &[
    "id_token_signed_response_alg",
    "userinfo_signed_response_alg",
    "introspection_signed_response_alg",
    "request_object_signing_alg",
    "token_endpoint_auth_signing_alg",
];

fn bad_metadata(d: impl Into<String>) -> OAuthError {
    OAuthError::new("invalid_client_metadata", d)
}

fn bad_redirect(d: impl Into<String>) -> OAuthError {
    OAuthError::new("invalid_redirect_uri", d)
}

/// RFC 6750 §3.1: the token presented is missing, unknown, spent or expired.
fn bad_token(d: &str) -> DomainError {
    OAuthError::new("invalid_token", d).into()
}

/// A registration as answered to the client: the secret and the
/// registration access token appear only when just made.
pub struct Registered {
    pub client: Client,
    pub client_secret: Option<String>,
    pub registration_access_token: Option<String>,
}

impl Registered {
    /// The client information response (RFC 7591 §3.2.1, RFC 7592 §3).
    pub fn response(&self, issuer: &str) -> Value {
        let c = &self.client;
        let mut out = c.metadata.clone();
        let response_types = out.remove("response_types").unwrap_or_else(|| json!(["code"]));
        let issued_at = out.remove("client_id_issued_at").unwrap_or(Value::from(0));
        let fixed = json!({
            "client_id": c.client_id,
            "client_id_issued_at": issued_at,
            "registration_client_uri": format!("{issuer}{ENDPOINT}/{}", c.client_id),
            "client_name": c.name,
            "redirect_uris": c.redirect_uris,
            "post_logout_redirect_uris": c.post_logout_redirect_uris,
            "grant_types": c.grant_types,
            "response_types": response_types,
            "token_endpoint_auth_method": c.auth_method.as_str(),
            "scope": c.allowed_scopes,
            "id_token_signed_response_alg": c.id_token_alg,
            "subject_type": c.subject_type,
            "require_pushed_authorization_requests": c.require_pushed_authorization_requests,
            "dpop_bound_access_tokens": c.dpop_bound_access_tokens,
            "tls_client_certificate_bound_access_tokens": c.tls_client_certificate_bound_access_tokens,
        });
        if let Value::Object(fixed) = fixed {
            out.extend(fixed);
        }
        if let (Some(jwks), None) = (&c.jwks, &c.jwks_uri) {
            out.insert("jwks".into(), jwks.clone());
        }
        if let Some(u) = &c.sector_identifier_uri {
            out.insert("sector_identifier_uri".into(), u.clone().into());
        }
        if let Some(u) = &c.backchannel_logout_uri {
            out.insert("backchannel_logout_uri".into(), u.clone().into());
        }
        if matches!(c.auth_method, AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost) {
            // Secrets do not expire (RFC 7591 §3.2.1: 0).
            out.insert("client_secret_expires_at".into(), 0.into());
        }
        if let Some(s) = &self.client_secret {
            out.insert("client_secret".into(), s.clone().into());
        }
        if let Some(t) = &self.registration_access_token {
            out.insert("registration_access_token".into(), t.clone().into());
        }
        Value::Object(out)
    }
}

/// An initial access token as issued: the token itself is shown once.
pub struct InitialToken {
    pub id: String,
    pub token: String,
    pub expires_at: i64,
    pub uses: i64,
}

/// The administrator issues an initial access token good for `uses`
/// registrations until `now + ttl` (audited; only its digest is stored).
pub async fn issue_initial_token(
    db: &Store,
    hasher: &SecretHasher,
    label: &str,
    uses: i64,
    ttl: i64,
    now: i64,
) -> DomainResult<InitialToken> {
    if uses < 1 || ttl < 1 {
        return Err(DomainError::Internal(anyhow::anyhow!("uses and ttl must be at least 1")));
    }
    let id = random_token(9);
    let token = random_token(32);
    let txn = crate::store::begin_write(db).await?;
    initial_access_token::ActiveModel {
        id: Set(id.clone()),
        token_hash: Set(hasher.digest(INITIAL_PURPOSE, &token)),
        label: Set(label.to_string()),
        uses_left: Set(uses),
        expires_at: Set(now + ttl),
        created_at: Set(now),
    }
    .insert(&txn)
    .await?;
    let subject = format!("initial_access_token:{id}");
    let detail = format!("uses={uses} ttl={ttl} label={label}");
    let event = Event::new("initial_access_token_issued", Actor::Operator("admin"), &subject).detail(&detail);
    crate::domain::audit::record(&txn, event, now).await?;
    txn.commit().await?;
    Ok(InitialToken { id, token, expires_at: now + ttl, uses })
}

/// The one check of a redirect URI the policy makes, after the general
/// rules (`validate_redirect_uri`): https — or loopback http when allowed —
/// and, when hosts are listed, one of them.
fn redirect_allowed(policy: &RegistrationPolicy, uri: &str) -> Result<(), OAuthError> {
    validate_redirect_uri(uri).map_err(bad_redirect)?;
    let u = url::Url::parse(uri).map_err(|e| bad_redirect(format!("`{uri}`: {e}")))?;
    let loopback = u.scheme() == "http" && matches!(u.host_str(), Some("127.0.0.1") | Some("[::1]"));
    if u.scheme() != "https" && !(loopback && policy.allow_loopback) {
        return Err(bad_redirect(format!("`{uri}`: redirect URIs must use https")));
    }
    if !loopback && !policy.redirect_hosts.is_empty() {
        let host = u.host_str().unwrap_or_default();
        if !policy.redirect_hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
            return Err(bad_redirect(format!("`{uri}`: the host `{host}` is not open to registration")));
        }
    }
    Ok(())
}

fn strings(body: &Map<String, Value>, key: &str) -> Result<Option<Vec<String>>, OAuthError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string).ok_or_else(|| bad_metadata(format!("{key} must list strings"))))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(bad_metadata(format!("{key} must be an array of strings"))),
    }
}

fn string(body: &Map<String, Value>, key: &str) -> Result<Option<String>, OAuthError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.len() <= 2048 => Ok(Some(s.clone())),
        Some(_) => Err(bad_metadata(format!("{key} must be a string"))),
    }
}

fn flag(body: &Map<String, Value>, key: &str) -> Result<bool, OAuthError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(bad_metadata(format!("{key} must be true or false"))),
    }
}

/// RFC 7591 §2: the client metadata, checked against the policy and made
/// into a registration. Unknown members are ignored (§2).
fn to_new_client(policy: &RegistrationPolicy, body: &Value, now: i64) -> Result<NewClient, OAuthError> {
    let Value::Object(body) = body else {
        return Err(bad_metadata("the request body must be a JSON object of client metadata"));
    };
    let allowed = |list: &[String], v: &str| list.iter().any(|x| x == v);
    let method_name = string(body, "token_endpoint_auth_method")?.unwrap_or_else(|| "client_secret_basic".into());
    let method = AuthMethod::parse(&method_name)
        .filter(|_| allowed(&policy.token_endpoint_auth_methods, &method_name))
        .ok_or_else(|| bad_metadata(format!("token_endpoint_auth_method `{method_name}` is not allowed")))?;
    let grant_types = strings(body, "grant_types")?.unwrap_or_else(|| vec!["authorization_code".into()]);
    for g in &grant_types {
        if !allowed(&policy.grant_types, g) {
            return Err(bad_metadata(format!("grant type `{g}` is not open to registration")));
        }
    }
    let response_types = strings(body, "response_types")?.unwrap_or_else(|| vec!["code".into()]);
    for r in &response_types {
        if !allowed(&policy.response_types, r) || r != "code" {
            return Err(bad_metadata(format!("response type `{r}` is not supported")));
        }
    }
    let code_flow = grant_types.iter().any(|g| g == "authorization_code");
    if code_flow != response_types.iter().any(|r| r == "code") {
        return Err(bad_metadata("response_types code and grant_types authorization_code go together (RFC 7591 §2.1)"));
    }
    let redirect_uris = strings(body, "redirect_uris")?.unwrap_or_default();
    if code_flow && redirect_uris.is_empty() {
        return Err(bad_redirect("redirect_uris is required for the authorization code grant"));
    }
    let post_logout = strings(body, "post_logout_redirect_uris")?.unwrap_or_default();
    for uri in redirect_uris.iter().chain(post_logout.iter()) {
        redirect_allowed(policy, uri)?;
    }
    let backchannel = string(body, "backchannel_logout_uri")?;
    if let Some(uri) = &backchannel {
        redirect_allowed(policy, uri)
            .map_err(|e| bad_metadata(format!("backchannel_logout_uri: {}", e.description)))?;
    }
    // Only the built-in scopes the policy opens: a plugin scope or an
    // administrator-granted one (`scan_login`) needs an administrator.
    let scope = match string(body, "scope")? {
        Some(s) => {
            let asked: Vec<&str> = s.split(' ').filter(|x| !x.is_empty()).collect();
            for x in &asked {
                if !allowed(&policy.scopes, x) || !scopes::SUPPORTED.contains(x) {
                    return Err(bad_metadata(format!(
                        "scope `{x}` cannot be registered; plugin and administrator-granted scopes need an administrator's grant"
                    )));
                }
            }
            asked.join(" ")
        }
        None => policy
            .scopes
            .iter()
            .filter(|s| scopes::SUPPORTED.contains(&s.as_str()))
            .cloned()
            .collect::<Vec<_>>()
            .join(" "),
    };
    if scope.is_empty() {
        return Err(bad_metadata("no scope is open to registration"));
    }
    for key in ALG_FIELDS {
        if let Some(alg) = string(body, key)?
            && (jws::Alg::parse(&alg).is_none() || !allowed(&policy.signing_algs, &alg))
        {
            return Err(bad_metadata(format!("{key} `{alg}` is not allowed (and `none` never is)")));
        }
    }
    let jwks = match body.get("jwks") {
        None | Some(Value::Null) => None,
        Some(j @ Value::Object(_)) => Some(j.clone()),
        Some(_) => return Err(bad_metadata("jwks must be a JWK set (an object with keys)")),
    };
    let name = string(body, "client_name")?.unwrap_or_else(|| "client".into());
    if name.chars().count() > 200 {
        return Err(bad_metadata("client_name is too long (200 characters at most)"));
    }
    let mut metadata = Map::new();
    for key in KEPT {
        if let Some(v) = body.get(*key).filter(|v| !v.is_null()) {
            metadata.insert(key.to_string(), v.clone());
        }
    }
    // Localized names (OIDC Registration §2.1); checked with the logo by
    // the one branding rule in `prepare`.
    for (key, v) in body.iter().filter(|(k, _)| k.starts_with(super::branding::NAME_PREFIX)) {
        metadata.insert(key.clone(), v.clone());
    }
    metadata.insert("response_types".into(), json!(response_types));
    metadata.insert("client_id_issued_at".into(), now.into());
    Ok(NewClient {
        name,
        client_id: None,
        public: method == AuthMethod::None,
        auth_method: Some(method),
        redirect_uris,
        post_logout_redirect_uris: post_logout,
        grant_types: Some(grant_types),
        scopes: Some(scope),
        id_token_alg: string(body, "id_token_signed_response_alg")?,
        jwks,
        backchannel_logout_uri: backchannel,
        // CIBA clients are registered by an administrator.
        backchannel_token_delivery_mode: None,
        backchannel_client_notification_endpoint: None,
        skip_consent: false,
        min_level: None,
        profile: None,
        require_par: flag(body, "require_pushed_authorization_requests")?,
        dpop_bound: flag(body, "dpop_bound_access_tokens")?,
        tls_bound: flag(body, "tls_client_certificate_bound_access_tokens")?,
        subject_type: string(body, "subject_type")?,
        sector_identifier_uri: string(body, "sector_identifier_uri")?,
        metadata: Some(metadata),
    })
}

/// RFC 7591 §3: registers a client with an initial access token.
pub async fn register(
    svc: &ClientService,
    policy: &RegistrationPolicy,
    initial: Option<&str>,
    body: &Value,
) -> DomainResult<Registered> {
    if !policy.enabled {
        return Err(OAuthError::new("access_denied", "dynamic client registration is not enabled").into());
    }
    let initial = initial.filter(|t| !t.is_empty() && t.len() <= 256).ok_or_else(|| {
        bad_token("registration needs an initial access token from the administrator (Authorization: Bearer)")
    })?;
    let now = svc.clock.now();
    let new = to_new_client(policy, body, now)?;
    let Prepared { client_id, mut model, secret, method, .. } = svc.prepare(&new).await.map_err(bad_metadata)?;
    let rat = random_token(32);
    model.registration_token_hash = Set(Some(svc.hasher.digest(RAT_PURPOSE, &rat)));
    let txn = crate::store::begin_write(&svc.db).await?;
    // One use spent, or none left: the UPDATE decides.
    let token_hash = svc.hasher.digest(INITIAL_PURPOSE, initial);
    let spent = initial_access_token::Entity::update_many()
        .col_expr(initial_access_token::Column::UsesLeft, Expr::col(initial_access_token::Column::UsesLeft).sub(1i64))
        .filter(initial_access_token::Column::TokenHash.eq(token_hash.clone()))
        .filter(initial_access_token::Column::UsesLeft.gt(0i64))
        .filter(initial_access_token::Column::ExpiresAt.gt(now))
        .exec(&txn)
        .await?;
    if spent.rows_affected != 1 {
        txn.rollback().await?;
        return Err(bad_token("the initial access token is unknown, expired or used up"));
    }
    let token_id = initial_access_token::Entity::find()
        .filter(initial_access_token::Column::TokenHash.eq(token_hash))
        .one(&txn)
        .await?
        .map(|t| t.id)
        .unwrap_or_default();
    let inserted = model.insert(&txn).await?;
    let subject = format!("client:{client_id}");
    let detail = format!("initial_access_token={token_id} auth_method={}", method.as_str());
    let event = Event::new("client_registered", Actor::Anonymous, &subject).detail(&detail);
    crate::domain::audit::record(&txn, event, now).await?;
    txn.commit().await?;
    Ok(Registered {
        client: svc.effective(Client::from_model(inserted)),
        client_secret: secret,
        registration_access_token: Some(rat),
    })
}

/// The registration `client_id` names, when `rat` is its registration
/// access token (RFC 7592 §3: anything else is `invalid_token`, whether
/// the client exists or not).
async fn managed(svc: &ClientService, client_id: &str, rat: Option<&str>) -> DomainResult<Client> {
    let fail = || bad_token("the registration access token is not valid for this client");
    let rat = rat.filter(|t| !t.is_empty() && t.len() <= 256).ok_or_else(fail)?;
    if client_id.is_empty() || client_id.len() > 128 {
        return Err(fail());
    }
    let row = client::Entity::find_by_id(client_id.to_owned()).one(&svc.db).await?.ok_or_else(fail)?;
    let ok = row.registration_token_hash.as_deref().is_some_and(|h| svc.hasher.verify(RAT_PURPOSE, rat, h));
    if !ok || row.disabled {
        return Err(fail());
    }
    Ok(svc.effective(Client::from_model(row)))
}

/// RFC 7592 §2.1: the registration as it stands (the secret is stored only
/// as a digest, so it is not repeated).
pub async fn read(svc: &ClientService, client_id: &str, rat: Option<&str>) -> DomainResult<Registered> {
    let client = managed(svc, client_id, rat).await?;
    Ok(Registered { client, client_secret: None, registration_access_token: None })
}

/// RFC 7592 §2.2: replaces the registration with the metadata sent, under
/// the same policy as registering. The secret is kept while the method
/// stays a secret method; a new one is issued when it becomes one. The
/// pairwise sector cannot change (the app's subjects would).
pub async fn update(
    svc: &ClientService,
    policy: &RegistrationPolicy,
    client_id: &str,
    rat: Option<&str>,
    body: &Value,
) -> DomainResult<Registered> {
    let old = managed(svc, client_id, rat).await?;
    if !policy.enabled {
        return Err(OAuthError::new("access_denied", "dynamic client registration is not enabled").into());
    }
    let Some(fields) = body.as_object() else {
        return Err(bad_metadata("the request body must be a JSON object of client metadata").into());
    };
    if fields.get("client_id").and_then(Value::as_str) != Some(client_id) {
        return Err(OAuthError::invalid_request("client_id must be sent and be this client's").into());
    }
    if let Some(f) = SERVER_FIELDS.iter().find(|f| fields.contains_key(**f)) {
        return Err(OAuthError::invalid_request(format!("`{f}` is set by the server and must not be sent")).into());
    }
    if let Some(sent) = fields.get("client_secret") {
        let matches = sent
            .as_str()
            .is_some_and(|s| old.secret_hash.as_deref().is_some_and(|h| svc.hasher.verify(SECRET_PURPOSE, s, h)));
        if !matches {
            return Err(OAuthError::invalid_request("client_secret does not match the client's").into());
        }
    }
    let now = svc.clock.now();
    let mut new = to_new_client(policy, body, now)?;
    new.client_id = Some(client_id.to_string());
    if let Some(m) = new.metadata.as_mut() {
        m.insert("client_id_issued_at".into(), old.metadata.get("client_id_issued_at").cloned().unwrap_or(0.into()));
    }
    let Prepared { mut model, mut secret, method, .. } = svc.prepare(&new).await.map_err(bad_metadata)?;
    if old.pairwise_sector().is_some() {
        let sector = match &model.sector {
            sea_orm::ActiveValue::Set(s) | sea_orm::ActiveValue::Unchanged(s) => s.clone(),
            sea_orm::ActiveValue::NotSet => None,
        };
        if sector.as_deref() != old.sector.as_deref() {
            return Err(bad_metadata("a pairwise client's sector cannot change").into());
        }
    }
    if method == old.auth_method && old.secret_hash.is_some() {
        model.secret_hash = Set(old.secret_hash.clone());
        secret = None;
    }
    model.registration_token_hash = Set(old.registration_token_hash.clone());
    model.old_secret_hash = Set(old.old_secret_hash.clone());
    model.old_secret_until = Set(old.old_secret_until);
    model.created_at = sea_orm::ActiveValue::NotSet;
    let txn = crate::store::begin_write(&svc.db).await?;
    let updated = model.update(&txn).await?;
    let subject = format!("client:{client_id}");
    let detail = format!("via=registration_access_token auth_method={}", method.as_str());
    let event = Event::new("client_updated", Actor::Anonymous, &subject).detail(&detail);
    crate::domain::audit::record(&txn, event, now).await?;
    txn.commit().await?;
    svc.changed(client_id).await;
    Ok(Registered {
        client: svc.effective(Client::from_model(updated)),
        client_secret: secret,
        registration_access_token: None,
    })
}

/// RFC 7592 §2.3: the client deletes itself; from then on it is unknown
/// at every endpoint.
pub async fn delete(svc: &ClientService, client_id: &str, rat: Option<&str>) -> DomainResult<()> {
    managed(svc, client_id, rat).await?;
    svc.delete_as(client_id, Actor::Anonymous, "via=registration_access_token").await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RegistrationPolicy {
        RegistrationPolicy { enabled: true, ..Default::default() }
    }

    #[test]
    fn redirect_uris_follow_the_policy() {
        let mut p = policy();
        assert!(redirect_allowed(&p, "https://rp.example/cb").is_ok());
        assert_eq!(redirect_allowed(&p, "http://rp.example/cb").unwrap_err().code, "invalid_redirect_uri");
        assert!(redirect_allowed(&p, "http://127.0.0.1:9/cb").is_err(), "loopback only when allowed");
        p.allow_loopback = true;
        assert!(redirect_allowed(&p, "http://127.0.0.1:9/cb").is_ok());
        p.redirect_hosts = vec!["rp.gov.cn".into()];
        assert!(redirect_allowed(&p, "https://rp.gov.cn/cb").is_ok());
        assert!(redirect_allowed(&p, "https://evil.example/cb").is_err());
    }

    #[test]
    fn metadata_is_checked() {
        let p = policy();
        let ok = json!({"redirect_uris": ["https://rp.example/cb"], "scope": "openid profile"});
        let new = to_new_client(&p, &ok, 1).unwrap();
        assert_eq!(new.auth_method, Some(AuthMethod::ClientSecretBasic));
        assert_eq!(new.scopes.as_deref(), Some("openid profile"));
        for (body, code) in [
            (
                json!({"redirect_uris": ["https://rp.example/cb"], "scope": "openid scan_login"}),
                "invalid_client_metadata",
            ),
            (
                json!({"redirect_uris": ["https://rp.example/cb"], "grant_types": ["client_credentials"]}),
                "invalid_client_metadata",
            ),
            (
                json!({"redirect_uris": ["https://rp.example/cb"], "response_types": ["token"]}),
                "invalid_client_metadata",
            ),
            (
                json!({"redirect_uris": ["https://rp.example/cb"], "id_token_signed_response_alg": "none"}),
                "invalid_client_metadata",
            ),
            (
                json!({"redirect_uris": ["https://rp.example/cb"], "token_endpoint_auth_method": "none"}),
                "invalid_client_metadata",
            ),
            (json!({"scope": "openid"}), "invalid_redirect_uri"),
            (json!([1, 2]), "invalid_client_metadata"),
        ] {
            assert_eq!(to_new_client(&p, &body, 1).unwrap_err().code, code, "{body}");
        }
    }
}
