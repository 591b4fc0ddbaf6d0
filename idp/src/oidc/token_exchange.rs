//! RFC 8693 token exchange at `/token` (C4, C6): an app holding a person's
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
use crate::domain::clients::scopes::ScopeSet;
use crate::domain::delegation::acting;
use crate::domain::tokens::UserContext;
use crate::domain::tokens::grants::{self, NewGrant};
use crate::domain::{delegation, delegation::enterprises};
use crate::server::AppState;
use serde_json::Value;

pub const GRANT_TYPE: &str = crate::domain::clients::TOKEN_EXCHANGE_GRANT;
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

fn invalid_target(d: &str) -> OAuthError {
    OAuthError::new("invalid_target", d)
}

pub async fn exchange(state: &AppState, client: &Client, params: &Params) -> Result<TokenResponse, ApiError> {
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
    let claims = state
        .tokens
        .check_access_token(&state.store, subject_token, state.clock.now())
        .await?
        .ok_or_else(|| OAuthError::invalid_grant("the subject token is invalid, expired or revoked"))?;
    let str_claim = |n: &str| claims.get(n).and_then(Value::as_str).map(String::from);
    if str_claim("client_id").as_deref() != Some(client.client_id.as_str()) {
        return Err(OAuthError::invalid_grant("the subject token was issued to another client").into());
    }
    if claims.contains_key("act") {
        return Err(OAuthError::invalid_grant("a delegated token cannot be exchanged again").into());
    }
    let (Some(_), Some(gid)) = (str_claim("sub"), str_claim("gid")) else {
        return Err(OAuthError::invalid_grant("the subject token does not name a person").into());
    };
    let Some(original) = grants::active_grant(&state.store, &gid, state.clock.now()).await? else {
        return Err(OAuthError::invalid_grant("the subject token's grant was revoked").into());
    };
    // A token issued acting for someone (an enterprise session's, or a
    // delegated one) never becomes the person's own: checked on the grant,
    // not only on the token's claims.
    if original.enterprise_id.is_some() || original.delegation_id.is_some() {
        return Err(OAuthError::invalid_grant("a delegated token cannot be exchanged again").into());
    }
    // The person is the grant's account; `sub` is a subject (`domain::tokens::subjects`).
    let person = original.user_id.clone();
    let now = state.clock.now();
    let (enterprise_id, delegation) = match (form::one(params, "legal_person")?, form::one(params, "delegation")?) {
        (Some(uscc), None) => {
            let e = match crate::domain::delegation::uscc::Uscc::parse(uscc) {
                Ok(u) => enterprises::find_by_uscc(&state.store, u.as_str()).await?,
                Err(_) => None,
            }
            .ok_or_else(|| invalid_target("no such enterprise"))?;
            // The same rule as the web sign-in (C1): representative or agent
            // in force, and no first-sign-in face check outstanding.
            let Some(account) = state.users.find(&person).await? else {
                return Err(OAuthError::invalid_grant("the subject token's account is gone").into());
            };
            match enterprises::act_for(&state.store, e, &account, now).await? {
                Ok(signed) => match signed.face_checked() {
                    Ok(s) => {
                        let d = match &s.delegation_id {
                            Some(id) => delegation::find(&state.store, id).await?,
                            None => None,
                        };
                        (Some(s.enterprise.id), d)
                    }
                    Err(_) => {
                        return Err(OAuthError::invalid_grant(
                            "the first sign-in for this enterprise awaits its face check (C1): sign in on the web first",
                        )
                        .into());
                    }
                },
                Err(_) => {
                    return Err(invalid_target("the person has no active grant to act for this enterprise").into());
                }
            }
        }
        (None, Some(id)) => {
            let d = delegation::find(&state.store, id)
                .await?
                .filter(|d| {
                    d.kind == delegation::Kind::Person.as_str()
                        && d.grantee_user_id == person
                        && delegation::in_force(d, now)
                })
                .ok_or_else(|| invalid_target("the person has no active grant under this delegation"))?;
            (None, Some(d))
        }
        _ => return Err(OAuthError::invalid_request("name exactly one of legal_person or delegation").into()),
    };
    // Never wider than the subject token, nor than the delegation's scopes.
    let mut allowed = ScopeSet::parse(str_claim("scope").as_deref().unwrap_or_default())
        .retain_allowed(&ScopeSet::parse("openid profile email phone address legal_person"))
        .to_string_joined();
    if let Some(d) = &delegation
        && !d.scopes.is_empty()
    {
        let limit = ScopeSet::parse(&format!("openid {}", d.scopes));
        allowed = ScopeSet::parse(&allowed).retain_allowed(&limit).to_string_joined();
    }
    let allowed = ScopeSet::parse(&allowed);
    let scope = match form::one(params, "scope")? {
        Some(s) => {
            let req = ScopeSet::parse(s);
            if !req.is_subset_of(&allowed) {
                return Err(OAuthError::invalid_scope("token exchange may not widen the scope").into());
            }
            req
        }
        None => allowed,
    };
    let g = grants::create_direct(
        &state.store,
        NewGrant {
            client_id: client.client_id.clone(),
            user_id: person.clone(),
            sid: None,
            scope: scope.to_string_joined(),
            claims: None,
            nonce: None,
            auth_time: original.auth_time,
            acr: original.acr.clone(),
            amr: serde_json::from_str(&original.amr).unwrap_or_default(),
            enterprise_id,
            delegation_id: delegation.map(|d| d.id),
        },
        state.config.tokens.access_token_ttl,
        now,
    )
    .await?;
    let Ok(Some(acting)) = acting::for_grant(&state.store, &g, now).await? else {
        grants::revoke_grant(&state.store, &g.id, state.clock.now()).await?;
        return Err(invalid_target("the delegation ended meanwhile").into());
    };
    let scope_joined = scope.to_string_joined();
    let at = state.tokens.access_token(
        &client.client_id,
        &scope_joined,
        Some(UserContext { grant: &g, acting: Some(&acting) }),
    )?;
    Ok(TokenResponse {
        access_token: at.token,
        token_type: "Bearer",
        expires_in: at.expires_in,
        scope: scope_joined,
        id_token: None,
        refresh_token: None,
        issued_token_type: Some(ACCESS_TOKEN_TYPE),
    })
}
