//! `/authorize` (GET and POST, OIDC Core §3.1.2.1) and its resume point.
use super::flow::{self, Outcome, see_other};
use super::form;
use crate::domain::authn::pending;
use crate::domain::error::OAuthError;
use crate::domain::tokens::authorize::{self, RequestError};
use crate::kit::cookies::{self, current_session};
use crate::kit::extract::PageError;
use crate::kit::pages::error_page;
use crate::server::AppState;
use axum::body::Bytes;
use axum::extract::{Query, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use serde::Deserialize;

pub async fn get_handler(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, PageError> {
    let params = form::parse_query(q.as_deref());
    handle(state, jar, headers, params).await
}

pub async fn post_handler(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    match form::parse_body(&headers, &body) {
        Ok(params) => handle(state, jar, headers, params).await,
        Err(_) => Err(PageError::bad_request("error_bad_form")),
    }
}

/// An error page of `/authorize` (status, locale key): rendered with the
/// viewer looked up for it alone (`frame::with_viewer`).
type Refused = (StatusCode, &'static str);

async fn handle(
    state: AppState,
    jar: CookieJar,
    headers: HeaderMap,
    params: form::Params,
) -> Result<Response, PageError> {
    let ui_locales = form::one(&params, "ui_locales").ok().flatten().map(String::from);
    let locale = cookies::locale(&state, &headers, ui_locales.as_deref());
    match decide(&state, jar, params, locale).await? {
        Ok(res) => Ok(res),
        Err((status, key)) => {
            Ok(crate::kit::frame::with_viewer(&state, &headers, || error_page(&state, status, locale, key)).await)
        }
    }
}

async fn decide(
    state: &AppState,
    jar: CookieJar,
    params: form::Params,
    locale: &str,
) -> Result<Result<Response, Refused>, PageError> {
    let state = state.clone();
    let page_err = |key: &'static str| Err((StatusCode::BAD_REQUEST, key));
    let client_id = match authorize::client_id_param(&params) {
        Ok(c) => c.to_string(),
        Err(e) => return Ok(page_err(e.message_key())),
    };
    let client = state.clients.find_current(&client_id).await?;
    // PAR (RFC 9126) and request objects (RFC 9101) become plain parameters.
    let params = match &client {
        Some(c) => {
            let now = state.clock.now();
            match crate::domain::tokens::par::resolve(&state.store, c, params, &state.config.issuer, now).await? {
                Ok(p) => p,
                Err(RequestError::Page(e)) => return Ok(page_err(e.message_key())),
                Err(RequestError::Redirect(r)) => {
                    return Ok(Ok(see_other(&flow::error_redirect(
                        &state,
                        &r.redirect_uri,
                        r.state.as_deref(),
                        &r.error,
                    ))));
                }
            }
        }
        None => params,
    };
    let redirect_uri = match authorize::redirect_target(&params, client.as_ref()) {
        Ok(uri) => uri.to_string(),
        Err(e) => return Ok(page_err(e.message_key())),
    };
    let Some(mut client) = client else {
        return Ok(page_err("error_unknown_client"));
    };
    // A disabled app (console) gets its error at its registered redirect URI.
    if client.disabled {
        let st = form::one(&params, "state").ok().flatten();
        let e = OAuthError::unauthorized_client("this client is disabled");
        return Ok(Ok(see_other(&flow::error_redirect(&state, &redirect_uri, st, &e))));
    }
    // Plugin scopes count as allowed only when an administrator permitted
    // this client and the plugin is loaded, enabled and healthy. Looked up
    // only when the request reaches past the client's own scopes (a scope
    // outside its list, or a `claims` request that might name a plugin's).
    let own = client.scopes();
    let reaches_past = form::one(&params, "claims").ok().flatten().is_some()
        || form::one(&params, "scope")
            .ok()
            .flatten()
            .is_some_and(|s| crate::domain::clients::scopes::ScopeSet::parse(s).iter().any(|s| !own.contains(s)));
    if reaches_past {
        let extra = state.plugins.usable_scopes(&client.client_id).await.map_err(PageError::unavailable)?;
        client.allow_scopes(&extra);
    }
    let hint = |token: &str| {
        state
            .tokens
            .verify_own(token, "JWT", true)
            .and_then(|c| c.get("sub").and_then(|s| s.as_str()).map(String::from))
    };
    let mut req = match authorize::parse(&params, &client, &redirect_uri, hint, state.clock.now()) {
        Ok(r) => r,
        Err(RequestError::Page(e)) => return Ok(page_err(e.message_key())),
        Err(RequestError::Redirect(r)) => {
            return Ok(Ok(see_other(&flow::error_redirect(&state, &r.redirect_uri, r.state.as_deref(), &r.error))));
        }
    };
    // The hint names a subject; the session check compares accounts. A
    // subject no account holds any longer can match no session.
    if let Some(sub) = req.id_token_hint_sub.take() {
        let account =
            crate::domain::tokens::subjects::account_for_in(&state.store, client.pairwise_sector(), &sub).await?;
        req.id_token_hint_sub = Some(account.unwrap_or_default());
    }
    let (jar, browser) = cookies::browser(&state, jar);
    let session = current_session(&state, &jar).await?;
    match flow::advance(&state, req, None, &cookies::browser_hash(&browser), session).await {
        Ok(Outcome::ErrorPage(status, key)) => Ok(Err((status, key))),
        outcome => Ok(Ok(respond(&state, jar, locale, outcome))),
    }
}

pub fn respond(
    state: &AppState,
    jar: CookieJar,
    locale: &str,
    outcome: Result<Outcome, crate::domain::DomainError>,
) -> Response {
    match outcome {
        Ok(o) => (jar, o.into_response_with(state, locale)).into_response(),
        Err(e) => {
            tracing::error!("authorization failed: {e}");
            (jar, error_page(state, StatusCode::SERVICE_UNAVAILABLE, locale, "error_unavailable")).into_response()
        }
    }
}

#[derive(Deserialize)]
pub struct ReqId {
    #[serde(default)]
    pub req: String,
}

/// Where the interaction pages send the browser when a step is done.
pub async fn resume(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Query(q): Query<ReqId>,
) -> Result<Response, PageError> {
    let expired = || PageError::bad_request("error_request_expired");
    let browser = cookies::get(&state, &jar, cookies::BROWSER).ok_or_else(expired)?;
    let hash = cookies::browser_hash(&browser);
    let req = pending::load(&state.store, &q.req, &hash, state.clock.now()).await?.ok_or_else(expired)?;
    let locale = cookies::locale(&state, &headers, req.ui_locales.as_deref());
    let session = current_session(&state, &jar).await?;
    let outcome = flow::advance(&state, req, Some(q.req.clone()), &hash, session).await;
    Ok(respond(&state, jar, locale, outcome))
}
