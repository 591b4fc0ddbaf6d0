//! RFC 8693 token exchange at `/token` (C4, C6): the protocol side (which
//! parameters, which token types). Who may act for whom is the core use
//! case `domain::tokens::exchange::exchange_token`. An app holding a person's
//! access token obtains a delegated access token for an enterprise that
//! person may act for (`legal_person=<credit code>`) or for a person who
//! authorised him (`delegation=<id>`). The result carries `sub` = the
//! principal and `act` = `{"sub": <the person>}`.
//!
//! Guard rails (Keycloak CVE-2022-1245): only tokens issued to
//! the calling client are accepted, the new token is for the same client
//! (an `audience` naming anyone else is refused), its scope never exceeds
//! the subject token's (nor the delegation's scopes), an already delegated
//! token cannot be exchanged again, and no refresh token is issued. The new
//! token hangs off a grant tied to the delegation, so ending the
//! delegation ends the token.
use super::error::ApiError;
use super::form::{self, Params};
use super::token::TokenResponse;
use crate::domain::OAuthError;
use crate::domain::clients::Client;
use crate::domain::tokens::exchange::{self, Deps, ExchangeRequest, Principal};
use crate::server::AppState;

pub const GRANT_TYPE: &str = crate::domain::clients::TOKEN_EXCHANGE_GRANT;
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

fn invalid_target(d: &str) -> OAuthError {
    OAuthError::new("invalid_target", d)
}

/// `cnf`: the DPoP key the caller proved at `/token` and the client
/// certificate its tokens are bound to (a FAPI 2.0 client always has one
/// of them: `/token` refuses it without).
pub async fn exchange(
    state: &AppState,
    client: &Client,
    params: &Params,
    cnf: crate::domain::tokens::Confirmation<'_>,
) -> Result<TokenResponse, ApiError> {
    let subject_token =
        form::one(params, "subject_token")?.ok_or_else(|| OAuthError::invalid_request("subject_token is required"))?;
    if form::one(params, "subject_token_type")? != Some(ACCESS_TOKEN_TYPE) {
        return Err(OAuthError::invalid_request(format!("subject_token_type must be {ACCESS_TOKEN_TYPE}")).into());
    }
    if form::one(params, "actor_token")?.is_some() {
        return Err(OAuthError::invalid_request("actor_token is not supported: the subject token's person acts").into());
    }
    if let Some(t) = form::one(params, "requested_token_type")?
        && t != ACCESS_TOKEN_TYPE
    {
        return Err(OAuthError::invalid_request("only access tokens are issued by exchange").into());
    }
    if let Some(aud) = form::one(params, "audience")?
        && aud != client.client_id
    {
        return Err(invalid_target("a token is only ever issued for the calling client").into());
    }
    if form::one(params, "resource")?.is_some() {
        return Err(invalid_target("name the principal with legal_person or delegation").into());
    }
    let principal = match (form::one(params, "legal_person")?, form::one(params, "delegation")?) {
        (Some(uscc), None) => Principal::LegalPerson(uscc),
        (None, Some(id)) => Principal::Delegation(id),
        _ => Principal::Unclear,
    };
    let deps = Deps {
        store: &state.store,
        users: &state.users,
        tokens: &state.tokens,
        access_token_ttl: state.config.tokens.access_token_ttl,
    };
    let request = ExchangeRequest {
        subject_token,
        principal,
        scope: form::one(params, "scope")?,
        now: state.clock.now(),
        jkt: cnf.jkt,
        x5t: cnf.x5t,
    };
    let done = exchange::exchange_token(deps, client, request).await?;
    Ok(TokenResponse {
        access_token: done.access_token,
        token_type: if cnf.jkt.is_some() { "DPoP" } else { "Bearer" },
        expires_in: done.expires_in,
        scope: done.scope,
        id_token: None,
        refresh_token: None,
        issued_token_type: Some(ACCESS_TOKEN_TYPE),
    })
}
