//! Who may call the person-facing app APIs — the scan API (D1, D2) and the
//! face API (`POST /api/identity/face`, B3): an app that an administrator
//! permitted an admin-granted scope (`idp client allow-scope CLIENT
//! scan_login`), presenting a live user token that carries that scope and
//! speaks for the person themselves. One function, so the face API cannot
//! drift from the scan API again: any relying app
//! holding a user's token must not run face checks in the user's name.
//! The permission is read on every call, so revoking it takes effect at once.
use crate::domain::authn::scan::AppCaller;
use crate::domain::clients::scopes::ScopeSet;
use crate::domain::identity::users::UserService;
use crate::domain::plugins::plugin_access;
use crate::domain::tokens::TokenIssuer;
use crate::store::Store;
use sea_orm::DbErr;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum AppAccessError {
    /// Unknown, expired or revoked token, ended delegation, or an account
    /// no longer active: RFC 6750 `invalid_token`.
    #[error("the access token is invalid, expired or revoked")]
    InvalidToken,
    /// A valid token without the scope, from an app not (or no longer)
    /// permitted it, or not a person's own token: `insufficient_scope`.
    #[error("a user token with the {0} scope is required")]
    InsufficientScope(&'static str),
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// The person and app behind `token`, which must carry the admin-granted
/// `scope` (one of `scopes::ADMIN_GRANTED`) still permitted to its client.
pub async fn person_app(
    db: &Store,
    tokens: &TokenIssuer,
    users: &UserService,
    token: &str,
    scope: &'static str,
    now: i64,
) -> Result<AppCaller, AppAccessError> {
    let claims = tokens.check_access_token(db, token, now).await?.ok_or(AppAccessError::InvalidToken)?;
    let text = |k: &str| claims.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let insufficient = AppAccessError::InsufficientScope(scope);
    let (client_id, grant_id) = (text("client_id"), text("gid"));
    if !ScopeSet::parse(&text("scope")).contains(scope) || grant_id.is_empty() {
        return Err(insufficient);
    }
    if !plugin_access::permitted(db, &client_id).await?.iter().any(|s| s == scope) {
        return Err(insufficient);
    }
    // The person is the token grant's account (`domain::tokens::subjects`); a token
    // acting for someone else (C4) never speaks for the app's person.
    if claims.contains_key("act") {
        return Err(insufficient);
    }
    let user_id = crate::domain::tokens::subjects::account_of_token(db, &claims, now)
        .await?
        .ok_or(AppAccessError::InvalidToken)?;
    match users.find(&user_id).await {
        Ok(Some(u)) if !u.disabled => {}
        Ok(_) => return Err(AppAccessError::InvalidToken),
        Err(crate::domain::DomainError::Store(e)) => return Err(AppAccessError::Db(e)),
        Err(e) => return Err(AppAccessError::Db(DbErr::Custom(e.to_string()))),
    }
    let amr = claims
        .get("amr")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect())
        .unwrap_or_default();
    Ok(AppCaller { user_id, client_id, grant_id, acr: text("acr"), amr })
}
