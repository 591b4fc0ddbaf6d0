//! RP-initiated logout (OIDC RP-Initiated Logout 1.0) and back-channel
//! logout notifications (OIDC Back-Channel Logout 1.0).
use super::flow::{client_redirect, see_other};
use super::form;
use crate::domain::{authn::sessions, tokens::grants};
use crate::kit::cookies;
use crate::kit::cookies::current_session;
use crate::kit::extract::PageError;
use crate::kit::pages::{error_page, page};
use crate::server::AppState;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use serde_json::Value;

pub async fn handler(
    State(state): State<AppState>,
    jar: CookieJar,
    method: Method,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, PageError> {
    let params = if method == Method::POST {
        form::parse_body(&headers, &body).unwrap_or_default()
    } else {
        form::parse_query(q.as_deref())
    };
    let ui = form::one(&params, "ui_locales").ok().flatten().map(String::from);
    let locale = cookies::locale(&state, &headers, ui.as_deref());
    let err = |key: &str| error_page(&state, StatusCode::BAD_REQUEST, locale, key);
    if form::no_duplicates(&params).is_err() {
        return Ok(err("error_duplicate_parameter"));
    }
    let get = |n: &str| form::one(&params, n).ok().flatten().map(String::from);
    let hint = match get("id_token_hint") {
        Some(h) => match state.tokens.verify_own(&h, "JWT", true) {
            Some(c) => Some(c),
            None => return Ok(err("error_bad_id_token_hint")),
        },
        None => None,
    };
    let hint_aud = hint.as_ref().and_then(|c| match c.get("aud") {
        Some(Value::String(a)) => Some(a.clone()),
        Some(Value::Array(a)) => a.first().and_then(Value::as_str).map(String::from),
        _ => None,
    });
    let client_id = match (get("client_id"), hint_aud) {
        (Some(a), Some(b)) if a != b => return Ok(err("error_logout_client_mismatch")),
        (a, b) => a.or(b),
    };
    let client = match &client_id {
        Some(id) => match state.clients.find(id).await? {
            Some(c) => Some(c),
            None => return Ok(err("error_unknown_client")),
        },
        None => None,
    };
    let post_logout = get("post_logout_redirect_uri");
    if let Some(uri) = &post_logout {
        let ok = client.as_ref().is_some_and(|c| c.matches_post_logout_uri(uri));
        if !ok {
            return Ok(err("error_unregistered_post_logout_uri"));
        }
    }
    let st = get("state");
    let session = current_session(&state, &jar).await?;
    let confirmed = method == Method::POST
        && get("confirm").as_deref() == Some("yes")
        && cookies::csrf_ok(&state, &jar, &get("csrf").unwrap_or_default());
    let hint_matches = match (hint.as_ref().and_then(|h| h.get("sub")).and_then(Value::as_str), &session) {
        (Some(sub), Some(s)) => {
            let account = crate::domain::tokens::subjects::account_for_in(
                &state.store,
                client.as_ref().and_then(|c| c.pairwise_sector()),
                sub,
            )
            .await?;
            account.as_deref() == Some(s.user_id.as_str())
        }
        _ => false,
    };
    let mut jar = jar;
    if let Some(s) = &session {
        if !(confirmed || hint_matches) {
            let (jar, browser) = cookies::browser(&state, jar);
            let mut ctx = tera::Context::new();
            ctx.insert("csrf", &cookies::csrf_token(&state, &browser));
            ctx.insert("client_id", &client_id);
            ctx.insert("post_logout_redirect_uri", &post_logout);
            ctx.insert("state", &st);
            ctx.insert("client_name", &client.as_ref().map(|c| c.name.clone()));
            return Ok((jar, page(&state, StatusCode::OK, "logout.html", locale, ctx)).into_response());
        }
        end_session(&state, s).await?;
        jar = jar.remove(cookies::build(&state, cookies::SESSION, String::new(), None));
    }
    Ok(match post_logout {
        Some(uri) => (jar, see_other(&client_redirect(&uri, &[("state", st.as_deref())]))).into_response(),
        None => (jar, page(&state, StatusCode::OK, "logged_out.html", locale, tera::Context::new())).into_response(),
    })
}

/// Ends a session everywhere: the session row, the grants issued in it
/// (their refresh and access tokens die with them), and a logout token to
/// every client of the session that registered a back-channel URI.
pub async fn end_session(state: &AppState, s: &sessions::SessionInfo) -> Result<(), crate::store::DbErr> {
    let subject = crate::domain::tokens::subjects::of_account(&state.store, &s.user_id).await?;
    end_session_as(state, s, &subject).await
}

/// `end_session`, telling the apps the `sub` they knew the session by (an
/// identity takeover has just moved the account's subject, B5).
pub async fn end_session_as(
    state: &AppState,
    s: &sessions::SessionInfo,
    subject: &str,
) -> Result<(), crate::store::DbErr> {
    sessions::revoke_by_sid(&state.store, &s.sid).await?;
    grants::revoke_by_sid(&state.store, &s.sid, state.clock.now()).await?;
    notify_clients_as(state, subject, &s.sid).await;
    Ok(())
}

/// The delivery behind the core's logout port: the use cases end sessions
/// in their transaction and hand them here after commit.
impl crate::ports::notify::LogoutNotifier for AppState {
    async fn sessions_ended(&self, ended: &[crate::ports::notify::EndedSession]) {
        for s in ended {
            notify_clients_as(self, &s.subject, &s.sid).await;
        }
    }
}

/// Sends a back-channel logout token to every client of an ended session
/// (best effort, retried in the background).
pub async fn notify_clients(state: &AppState, user_id: &str, sid: &str) {
    match crate::domain::tokens::subjects::of_account(&state.store, user_id).await {
        Ok(subject) => notify_clients_as(state, &subject, sid).await,
        Err(e) => tracing::error!("back-channel logout: {e}"),
    }
}

/// `notify_clients` with the `sub` the apps know the session by. A client
/// whose tokens in this session spoke for an enterprise or a granting
/// person (C4, C6) knew it by that principal, and is told that `sub`.
pub async fn notify_clients_as(state: &AppState, subject: &str, sid: &str) {
    let Ok(client_ids) = sessions::clients_of(&state.store, sid).await else {
        return;
    };
    for id in client_ids {
        let Ok(Some(client)) = state.clients.find(&id).await else {
            continue;
        };
        let Some(uri) = client.backchannel_logout_uri.clone() else {
            continue;
        };
        let principal = match crate::domain::delegation::acting::principal_in_session(&state.store, sid, &id).await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!("back-channel logout: {e}");
                None
            }
        };
        // A principal from `principal_in_session` is already in the client's sector.
        let sub = match principal {
            Some(p) => p,
            None => match crate::domain::tokens::subjects::in_sector(&state.store, client.pairwise_sector(), subject)
                .await
            {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!("back-channel logout: {e}");
                    continue;
                }
            },
        };
        let Ok(token) = state.tokens.logout_token(&client, &sub, sid) else {
            continue;
        };
        let http = state.http.clone();
        let request_id = crate::net::current_request_id().unwrap_or_default();
        tokio::spawn(async move {
            for attempt in 0..3u64 {
                let sent = http
                    .post(&uri)
                    .header(crate::net::REQUEST_ID_HEADER, &request_id)
                    .form(&[("logout_token", token.as_str())])
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().is_success() => return,
                    Ok(r) => tracing::warn!("back-channel logout to {uri}: HTTP {}", r.status()),
                    Err(e) => tracing::warn!("back-channel logout to {uri}: {e}"),
                }
                tokio::time::sleep(std::time::Duration::from_millis(500 * (attempt + 1))).await;
            }
        });
    }
}
