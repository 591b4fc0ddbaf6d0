//! Cookies, CSRF and browser binding. Each browser gets a random
//! `idp_browser` cookie; pending authorization requests are bound to its
//! hash, and form CSRF tokens are an HMAC of it, so a form or a request id
//! lifted from one browser is useless in another.
use crate::crypto::{b64url, random_token, sha256_b64};
use crate::server::AppState;
use axum::http::HeaderMap;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const SESSION: &str = "idp_session";
pub const BROWSER: &str = "idp_browser";
pub const LANG: &str = "idp_lang";
/// Where to return after a sign-in that a protected page asked for.
pub const NEXT: &str = "idp_next";

/// A local path we may send the browser back to: absolute path on this
/// host only (no scheme, no `//host`, no backslash tricks).
pub fn safe_local_path(path: &str) -> Option<&str> {
    let ok = path.starts_with('/')
        && !path.starts_with("//")
        && !path.contains('\\')
        && !path.contains("://")
        && path.len() <= 512
        && path.chars().all(|c| c.is_ascii_graphic());
    ok.then_some(path)
}

/// Sends the browser to sign in, remembering (for 10 minutes) the local
/// page to come back to.
pub fn sign_in_then(state: &AppState, jar: CookieJar, back_to: &str) -> axum::response::Response {
    use axum::response::IntoResponse;
    let jar = match safe_local_path(back_to) {
        Some(p) => jar.add(build(state, NEXT, p.to_string(), Some(600))),
        None => jar,
    };
    (jar, crate::oidc::flow::see_other(&format!("{}/login", state.config.issuer))).into_response()
}

/// Under TLS cookies get the `__Host-` prefix (bound to this origin, Secure,
/// Path=/), as OWASP ASVS asks.
pub fn name(state: &AppState, base: &str) -> String {
    if state.config.secure_cookies() { format!("__Host-{base}") } else { base.to_string() }
}

pub fn build(state: &AppState, base: &str, value: String, max_age_secs: Option<i64>) -> Cookie<'static> {
    let mut c = Cookie::new(name(state, base), value);
    c.set_http_only(true);
    c.set_path("/");
    c.set_same_site(SameSite::Lax);
    c.set_secure(state.config.secure_cookies());
    if let Some(age) = max_age_secs {
        c.set_max_age(cookie::time::Duration::seconds(age));
    }
    c
}

pub fn get(state: &AppState, jar: &CookieJar, base: &str) -> Option<String> {
    jar.get(&name(state, base)).map(|c| c.value().to_string()).filter(|v| !v.is_empty() && v.len() <= 128)
}

/// The browser id, creating one (and its cookie) when absent.
pub fn browser(state: &AppState, jar: CookieJar) -> (CookieJar, String) {
    match get(state, &jar, BROWSER) {
        Some(id) => (jar, id),
        None => {
            let id = random_token(32);
            let jar = jar.add(build(state, BROWSER, id.clone(), Some(400 * 24 * 3600)));
            (jar, id)
        }
    }
}

pub fn browser_hash(browser: &str) -> String {
    sha256_b64(browser.as_bytes())
}

pub fn csrf_token(state: &AppState, browser: &str) -> String {
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(&state.csrf_key) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(b"csrf\0");
    mac.update(browser.as_bytes());
    b64url(&mac.finalize().into_bytes())
}

pub fn csrf_ok(state: &AppState, jar: &CookieJar, presented: &str) -> bool {
    use subtle::ConstantTimeEq;
    let Some(browser) = get(state, jar, BROWSER) else {
        return false;
    };
    let expected = csrf_token(state, &browser);
    !presented.is_empty() && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
}

pub fn locale(state: &AppState, headers: &HeaderMap, ui_locales: Option<&str>) -> &'static str {
    let jar = CookieJar::from_headers(headers);
    let cookie = jar.get(LANG).map(|c| c.value().to_string());
    let accept = headers.get(axum::http::header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok());
    crate::i18n::negotiate(
        ui_locales,
        cookie.as_deref(),
        accept,
        &state.config.default_locale,
        &state.config.i18n.locales,
    )
}

/// The client address for rate limiting: the socket peer. (Behind a proxy
/// the operator terminates there; trusting X-Forwarded-For blindly would
/// let an attacker pick their own rate-limit bucket.)
pub fn client_ip(addr: Option<std::net::SocketAddr>) -> String {
    addr.map(|a| a.ip().to_string()).unwrap_or_else(|| "unknown".into())
}

/// The browser's SSO session, if it holds a live one.
pub async fn current_session(
    state: &AppState,
    jar: &CookieJar,
) -> Result<Option<crate::domain::authn::sessions::SessionInfo>, crate::store::DbErr> {
    match get(state, jar, SESSION) {
        Some(c) => {
            crate::domain::authn::sessions::find(&state.store, &c, &state.config.session, state.clock.now()).await
        }
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::safe_local_path;

    #[test]
    fn only_local_paths_are_returned_to() {
        assert_eq!(safe_local_path("/plugins/e-certificate/?x=1"), Some("/plugins/e-certificate/?x=1"));
        for bad in ["//evil.example/", "https://evil.example/", "/\\evil", "evil", "/a b", "/x?u=http://e"] {
            assert_eq!(safe_local_path(bad), None, "{bad}");
        }
    }
}
