//! `/token` (RFC 6749 §3.2): client authentication, then one grant type.
//! Responses are never cached (RFC 6749 §5.1).
use super::error::{ApiError, no_store};
use super::form::{self, Params};
use crate::domain::OAuthError;
use crate::domain::clients::Client;
use crate::domain::clients::scopes::{ScopeSet, individually_released};
use crate::domain::identity::users::user_claims;
use crate::domain::tokens::grants;
use crate::domain::tokens::{Confirmation, UserContext};
use crate::server::AppState;
use crate::store::entities::grant;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Serialize)]
pub struct TokenResponse {
    pub(crate) access_token: String,
    pub(crate) token_type: &'static str,
    pub(crate) expires_in: i64,
    pub(crate) scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) refresh_token: Option<String>,
    /// RFC 8693 §2.2.1, token exchange only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) issued_token_type: Option<&'static str>,
}

pub async fn handler(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    // The body is parsed once; the metrics read the grant type from it.
    let (grant, result) = match form::parse_body(&headers, &body) {
        Ok(params) => {
            let grant = form::one(&params, "grant_type").ok().flatten().unwrap_or_default().to_string();
            (grant, exchange(&state, &headers, &params).await)
        }
        Err(e) => (String::new(), Err(e.into())),
    };
    crate::kit::metrics::token(&grant, if result.is_ok() { "issued" } else { "refused" });
    match result {
        Ok(r) => super::dpop::with_nonce(&state, no_store(Json(r).into_response())),
        Err(e) => super::dpop::with_nonce(&state, e.into_response()),
    }
}

async fn exchange(state: &AppState, headers: &HeaderMap, params: &Params) -> Result<TokenResponse, ApiError> {
    form::no_duplicates(params)?;
    let creds = super::mtls::credentials(state, headers, params)?;
    let client = super::authenticate_client(state, &creds, "/token").await?;
    let grant_type =
        form::one(params, "grant_type")?.ok_or_else(|| OAuthError::invalid_request("grant_type is required"))?;
    let exchange = grant_type == super::token_exchange::GRANT_TYPE;
    let device = grant_type == crate::domain::tokens::device::GRANT_TYPE;
    let ciba = grant_type == crate::domain::tokens::ciba::GRANT_TYPE;
    if !exchange
        && !device
        && !ciba
        && !matches!(grant_type, "authorization_code" | "refresh_token" | "client_credentials")
    {
        return Err(
            OAuthError::new("unsupported_grant_type", format!("grant_type `{grant_type}` is not supported")).into()
        );
    }
    if !client.allows_grant(grant_type) {
        return Err(OAuthError::unauthorized_client(format!("this client may not use {grant_type}")).into());
    }
    // RFC 9449: a proof binds the tokens to its key.
    let jkt = super::dpop::token_proof(state, headers, &client).await?;
    // RFC 8705 §3: the client certificate, for a client with bound tokens.
    let x5t = certificate_binding(state, headers, &client)?;
    let cnf = Confirmation { jkt: jkt.as_deref(), x5t: x5t.as_deref() };
    match grant_type {
        "authorization_code" => authorization_code(state, &client, params, cnf).await,
        "refresh_token" => refresh_token(state, &client, params, cnf).await,
        _ if exchange => super::token_exchange::exchange(state, &client, params, cnf).await,
        _ if device => {
            let g = super::device::redeem(state, &client, params).await?;
            if let Some(jkt) = cnf.jkt
                && client.is_public()
            {
                grants::bind_dpop(&state.store, &g.id, jkt).await?;
            }
            respond_for_grant(state, &client, &g, false, cnf).await
        }
        _ if ciba => {
            let g = super::ciba::redeem(state, &client, params).await?;
            respond_for_grant(state, &client, &g, false, cnf).await
        }
        _ => client_credentials(state, &client, params, cnf).await,
    }
}

/// The thumbprint of the certificate the tokens of a client with
/// `tls_client_certificate_bound_access_tokens` are bound to; such a
/// client must present one (RFC 8705 §3).
fn certificate_binding(state: &AppState, headers: &HeaderMap, client: &Client) -> Result<Option<String>, ApiError> {
    if !client.requires_certificate() {
        return Ok(None);
    }
    match super::mtls::certificate(state, headers) {
        Some(cert) => Ok(Some(cert.thumbprint())),
        None => Err(OAuthError::invalid_request("this client must present its TLS client certificate").into()),
    }
}

async fn authorization_code(
    state: &AppState,
    client: &Client,
    params: &Params,
    cnf: Confirmation<'_>,
) -> Result<TokenResponse, ApiError> {
    let code = form::one(params, "code")?.ok_or_else(|| OAuthError::invalid_request("code is required"))?;
    let redirect_uri = form::one(params, "redirect_uri")?;
    let verifier = form::one(params, "code_verifier")?;
    let g = grants::redeem_code(
        &state.store,
        &state.hasher,
        code,
        &client.client_id,
        redirect_uri,
        verifier,
        cnf.jkt,
        state.clock.now(),
    )
    .await?;
    if let Some(jkt) = cnf.jkt
        && client.is_public()
    {
        grants::bind_dpop(&state.store, &g.id, jkt).await?;
    }
    respond_for_grant(state, client, &g, true, cnf).await
}

async fn refresh_token(
    state: &AppState,
    client: &Client,
    params: &Params,
    cnf: Confirmation<'_>,
) -> Result<TokenResponse, ApiError> {
    let token =
        form::one(params, "refresh_token")?.ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
    // Looked up once: the checks below and the rotation read the same rows.
    let found = grants::refresh_lookup(&state.store, &state.hasher, token).await?;
    let grant = found.as_ref().map(|(_, g)| g);
    // RFC 9449 §5: a public client's bound refresh token needs a proof by
    // the same key; checked before rotating so a stolen token is not burnt.
    if let Some(bound) = grant.and_then(|g| g.dpop_jkt.as_deref())
        && cnf.jkt != Some(bound)
    {
        return Err(OAuthError::invalid_grant("the refresh token is bound to another DPoP key").into());
    }
    // RFC 8705 §3: likewise a grant bound to a client certificate.
    if let Some(bound) = grant.and_then(|g| g.cert_x5t.as_deref())
        && cnf.x5t != Some(bound)
    {
        return Err(OAuthError::invalid_grant("the refresh token is bound to another client certificate").into());
    }
    let requested = form::one(params, "scope")?.map(ScopeSet::parse);
    // Check before rotating so a bad scope does not burn the token.
    if let (Some(req), Some(g)) = (&requested, grant)
        && !req.is_subset_of(&ScopeSet::parse(&g.scope))
    {
        return Err(OAuthError::invalid_scope("a refresh may not widen the granted scope").into());
    }
    let mut g = grants::rotate_found(&state.store, found, &client.client_id, state.clock.now()).await?;
    if let Some(req) = requested {
        g.scope = req.to_string_joined();
    }
    respond_for_grant(state, client, &g, false, cnf).await
}

/// Access token, ID token (with `openid`) and, for `offline_access`, a new
/// refresh token, for a grant that the caller has just won.
pub(crate) async fn respond_for_grant(
    state: &AppState,
    client: &Client,
    g: &grant::Model,
    from_code: bool,
    cnf: Confirmation<'_>,
) -> Result<TokenResponse, ApiError> {
    let user = state.users.find(&g.user_id).await?.filter(|u| !u.disabled);
    let Some(user) = user else {
        grants::revoke_grant(&state.store, &g.id, state.clock.now()).await?;
        return Err(OAuthError::invalid_grant("the account is no longer active").into());
    };
    // Plugin scopes whose permission was revoked or whose plugin was
    // disabled since the grant are dropped here; a faulty plugin
    // fails the request rather than yield a token with missing claims.
    // C4: a grant made acting for an enterprise or a person yields tokens
    // only while that delegation is in force (revoked or expired → none).
    let acting = match crate::domain::delegation::acting::for_grant(&state.store, g, state.clock.now()).await? {
        Ok(a) => a,
        Err(_) => {
            grants::revoke_grant(&state.store, &g.id, state.clock.now()).await?;
            return Err(OAuthError::invalid_grant("the delegation this grant acts under has ended").into());
        }
    };
    let released =
        state.plugins.release(&client.client_id, &user.id, g.sector.as_deref(), &ScopeSet::parse(&g.scope)).await?;
    let scope = released.scope;
    let scope_joined = scope.to_string_joined();
    let at = state.tokens.access_token_bound(
        &client.client_id,
        &scope_joined,
        Some(UserContext { grant: g, acting: acting.as_ref() }),
        cnf,
    )?;
    // The grant's refresh tokens follow its first certificate (RFC 8705 §3).
    if let Some(x5t) = cnf.x5t
        && g.cert_x5t.is_none()
    {
        grants::bind_certificate(&state.store, &g.id, x5t).await?;
    }
    let id_token = if scope.contains("openid") {
        // OIDC Core §5.5: the same rule as userinfo decides what of the
        // `claims` request the ID token carries.
        let requested = individually_released(g.claims.as_deref(), "id_token", &client.scopes());
        // The person's own claims never go out under the principal's `sub`.
        let extra = if acting.is_some() {
            serde_json::Map::new()
        } else {
            let mut extra = user_claims(&user, &ScopeSet::default(), &requested);
            for (name, value) in released.claims {
                extra.entry(name).or_insert(value);
            }
            extra
        };
        Some(state.tokens.id_token(client, g, Some(&at.token), from_code, extra, acting.as_ref())?)
    } else {
        None
    };
    let refresh_token = if scope.contains("offline_access") && client.allows_grant("refresh_token") {
        Some(grants::issue_refresh(&state.store, &state.hasher, g).await?)
    } else {
        None
    };
    Ok(TokenResponse {
        access_token: at.token,
        token_type: token_type(cnf),
        expires_in: at.expires_in,
        scope: scope_joined,
        id_token,
        refresh_token,
        issued_token_type: None,
    })
}

/// RFC 6749 §4.4: no user, no database write — the hot path is one client
/// lookup and one signature (plus a permission lookup only when a scope
/// outside the client's own list is asked for: a plugin scope).
fn token_type(cnf: Confirmation<'_>) -> &'static str {
    // A certificate-bound token is presented as `Bearer` (RFC 8705 §3).
    if cnf.jkt.is_some() { "DPoP" } else { "Bearer" }
}

async fn client_credentials(
    state: &AppState,
    client: &Client,
    params: &Params,
    cnf: Confirmation<'_>,
) -> Result<TokenResponse, ApiError> {
    if client.is_public() {
        return Err(OAuthError::unauthorized_client("public clients cannot use client_credentials").into());
    }
    let allowed = client.scopes();
    let requested = form::one(params, "scope")?.map(ScopeSet::parse).unwrap_or_default();
    let plugin_scopes = if requested.iter().any(|s| !allowed.contains(s)) {
        state.plugins.usable_scopes(&client.client_id).await?
    } else {
        Vec::new()
    };
    for s in requested.iter() {
        if matches!(s, "openid" | "offline_access") || !(allowed.contains(s) || plugin_scopes.iter().any(|p| p == s)) {
            return Err(
                OAuthError::invalid_scope(format!("scope `{s}` is not available with client_credentials")).into()
            );
        }
    }
    let scope = requested.to_string_joined();
    let at = state.tokens.access_token_bound(&client.client_id, &scope, None, cnf)?;
    Ok(TokenResponse {
        access_token: at.token,
        token_type: token_type(cnf),
        expires_in: at.expires_in,
        scope,
        id_token: None,
        refresh_token: None,
        issued_token_type: None,
    })
}
