//! Third-party login through an upstream OpenID Provider (A3 identity
//! brokering). The upstream is a second, real idp server on 127.0.0.2 (a
//! different cookie host from the downstream on 127.0.0.1), so the whole
//! round trip — discovery, PKCE, ID token signature, userinfo — is real.
use crate::both;
use crate::support::*;
use idp::config::UpstreamConfig;
use idp::domain::identity::users::NewUser;
use idp::store::entities::{audit, upstream_link};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

const UP_PHONE: &str = "13900000001";

pub(crate) struct Pair {
    pub up: TestApp,
    pub down: TestApp,
    pub rp: TestClient,
}

/// The upstream provider on 127.0.0.2 and the downstream on 127.0.0.1,
/// with a confidential client at the upstream whose redirect URI is the
/// downstream's callback, and a relying party at the downstream.
pub(crate) async fn pair(backend: Backend, trust_phone: bool) -> Pair {
    pair_with(backend, trust_phone, false).await
}

async fn pair_with(backend: Backend, trust_phone: bool, auto_register: bool) -> Pair {
    pair_tuned(backend, |up| {
        up.trust_phone = trust_phone;
        up.auto_register = auto_register;
    })
    .await
}

/// The pair with the downstream's `gov` upstream settings changed by `tune`.
pub(crate) async fn pair_tuned(backend: Backend, tune: impl FnOnce(&mut UpstreamConfig)) -> Pair {
    let listener = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = temp_dir();
    let mut config = config_for(&backend, port, &dir).await;
    config.issuer = format!("http://127.0.0.2:{port}");
    config.listen = format!("127.0.0.2:{port}");
    let up = spawn_with(config, listener, dir).await;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let callback = format!("http://127.0.0.1:{port}/login/upstream/gov/callback");
    let client = up
        .client(|c| {
            c.name = "Downstream provider".into();
            c.redirect_uris = vec![callback];
        })
        .await;
    let dir = temp_dir();
    let mut config = config_for(&backend, port, &dir).await;
    let mut gov = UpstreamConfig {
        kind: "oidc".into(),
        alipay_public_key: None,
        authorize_url: None,
        api_url: None,
        display_name: "国家平台".into(),
        display_name_en: Some("National Platform".into()),
        issuer: up.base.clone(),
        client_id: client.id,
        client_secret: client.secret.unwrap(),
        scopes: vec!["openid".into(), "profile".into(), "phone".into()],
        trust_phone: false,
        auto_register: false,
        reverify_max_age: 300,
        mini_program_client: None,
    };
    tune(&mut gov);
    config.upstreams.insert("gov".into(), gov);
    let down = spawn_with(config, listener, dir).await;
    let rp = down.confidential().await;
    Pair { up, down, rp }
}

pub(crate) async fn user_with(app: &TestApp, username: &str, phone: Option<&str>, email: &str) -> String {
    app.state
        .users
        .create(NewUser {
            username: username.into(),
            password: PASSWORD.into(),
            phone: phone.map(String::from),
            email: Some(email.into()),
            name: Some("李四".into()),
            id_number: None,
        })
        .await
        .unwrap()
        .sub
}

pub(crate) async fn links(app: &TestApp) -> Vec<upstream_link::Model> {
    upstream_link::Entity::find().all(&app.state.store).await.unwrap()
}

#[derive(Debug)]
pub(crate) enum Stop {
    /// Sent back to the downstream's relying party.
    Client(String),
    /// About to enter the downstream's upstream callback (when asked to stop there).
    Callback(String),
    /// A downstream page that is not sign-in or consent.
    Page { url: String, status: u16, body: String },
}

/// Follows redirects across both providers: signs in at the upstream as
/// `up_user`, answers the upstream consent with `decision`, consents at the
/// downstream, and stops at the relying party or any other downstream page.
pub(crate) async fn run(
    b: &Browser,
    p: &Pair,
    start: &str,
    up_user: &str,
    decision: &str,
    stop_at_callback: bool,
) -> Stop {
    let mut url = start.to_string();
    for _ in 0..20 {
        if url.starts_with(&p.rp.redirect_uri) {
            return Stop::Client(url);
        }
        if stop_at_callback && url.starts_with(&p.down.url("/login/upstream/gov/callback")) {
            return Stop::Callback(url);
        }
        let res = b.http.get(&url).send().await.unwrap();
        if let Some(next) = location(&res) {
            url = next;
            continue;
        }
        let status = res.status().as_u16();
        let body = res.text().await.unwrap();
        let parsed = url::Url::parse(&url).unwrap();
        let at_up = url.starts_with(&p.up.base);
        if !at_up && parsed.path() == "/register/real-name" && status == 200 {
            // The offer after registering: "not now".
            url = p.down.url(&link_href(&body, "skip").expect("skip link"));
            continue;
        }
        let (app, form): (&TestApp, Vec<(&str, String)>) = match (at_up, parsed.path(), status) {
            (true, "/login", 200) => (
                &p.up,
                vec![
                    ("req", hidden(&body, "req").unwrap()),
                    ("csrf", hidden(&body, "csrf").unwrap()),
                    ("username", up_user.to_string()),
                    ("password", PASSWORD.to_string()),
                ],
            ),
            (true, "/consent", 200) => (
                &p.up,
                vec![
                    ("req", hidden(&body, "req").unwrap()),
                    ("csrf", hidden(&body, "csrf").unwrap()),
                    ("decision", decision.to_string()),
                ],
            ),
            (false, "/consent", 200) => (
                &p.down,
                vec![
                    ("req", hidden(&body, "req").unwrap()),
                    ("csrf", hidden(&body, "csrf").unwrap()),
                    ("decision", "allow".to_string()),
                ],
            ),
            (false, _, _) => return Stop::Page { url, status, body },
            (true, path, _) => panic!("unexpected upstream page {path} {status}: {body}"),
        };
        let res = b.http.post(app.url(parsed.path())).form(&form).send().await.unwrap();
        url = location(&res).unwrap_or_else(|| panic!("form at {} did not redirect: {}", parsed.path(), res.status()));
    }
    panic!("too many redirects");
}

/// Starts at the relying party, checks the downstream sign-in page offers
/// the upstream button, and presses it.
pub(crate) async fn press_upstream_button(b: &Browser, p: &Pair) -> String {
    let res = b.http.get(auth_url(&p.down, &p.rp, &[])).send().await.unwrap();
    let login = location(&res).unwrap();
    let html = b.http.get(&login).send().await.unwrap().text().await.unwrap();
    let req = hidden(&html, "req").unwrap();
    assert!(html.contains("使用国家平台登录"), "{html}");
    let href = format!("/login/upstream/gov?req={req}");
    assert!(html.contains(&href), "{html}");
    p.down.url(&href)
}

/// Redeems the relying party's code at the downstream: the ID token's claims.
async fn id_token_claims(p: &Pair, end: &Stop) -> serde_json::Value {
    let Stop::Client(url) = end else { panic!("expected the relying party, got {end:?}") };
    let code = query_of(url).get("code").cloned().unwrap();
    let res = redeem(&p.down, &p.rp, &code, None).await;
    assert_eq!(res.status(), 200);
    jwt_claims(json(res).await["id_token"].as_str().unwrap())
}

fn ticket_page(end: &Stop) -> (String, String) {
    match end {
        Stop::Page { url, status: 200, body } if url.contains("/login/link?ticket=") => {
            (hidden(body, "ticket").unwrap(), hidden(body, "csrf").unwrap())
        }
        other => panic!("expected the link page, got {other:?}"),
    }
}

/// A link page's ticket and its CSRF token.
pub(crate) struct Ticket {
    id: String,
    csrf: String,
}

async fn link_post(b: &Browser, p: &Pair, t: &Ticket, username: &str, password: &str) -> reqwest::Response {
    let form = [("ticket", t.id.as_str()), ("csrf", &t.csrf), ("username", username), ("password", password)];
    b.http.post(p.down.url("/login/link")).form(&form).send().await.unwrap()
}

pub(crate) struct LinkedByPassword {
    /// Where the sign-in ended (the relying party).
    pub end: Stop,
    ticket: Ticket,
}

/// First third-party login of `up_user`: nothing is linked until the link
/// page gets the local account's password (a `wrong` one first is refused).
pub(crate) async fn link_by_password(
    b: &Browser,
    p: &Pair,
    up_user: &str,
    local: &str,
    wrong: Option<&str>,
) -> LinkedByPassword {
    let before = links(&p.down).await.len();
    let start = press_upstream_button(b, p).await;
    let (id, csrf) = ticket_page(&run(b, p, &start, up_user, "allow", false).await);
    let ticket = Ticket { id, csrf };
    assert_eq!(links(&p.down).await.len(), before, "nothing is linked before the person proves the local account");
    if let Some(wrong) = wrong {
        assert_eq!(link_post(b, p, &ticket, local, wrong).await.status(), 401);
        assert_eq!(links(&p.down).await.len(), before);
    }
    let res = link_post(b, p, &ticket, local, PASSWORD).await;
    assert_eq!(res.status(), 303);
    let end = run(b, p, &location(&res).unwrap(), up_user, "allow", false).await;
    LinkedByPassword { end, ticket }
}

async fn first_login_links_by_password_then_goes_straight_in(backend: Backend) {
    let p = pair(backend, false).await;
    user_with(&p.up, "upstream_zhang", Some(UP_PHONE), "zhang@example.org").await;
    let local = user_with(&p.down, "local_zhang", None, "other@example.org").await;

    let b = Browser::new();
    let linked = link_by_password(&b, &p, "upstream_zhang", "local_zhang", Some("Wrong-password-1")).await;
    let claims = id_token_claims(&p, &linked.end).await;
    assert_eq!(claims["sub"], local.as_str());
    let made = links(&p.down).await;
    assert_eq!(made.len(), 1);
    assert_eq!((made[0].user_id.as_str(), made[0].method.as_str()), (local.as_str(), "password"));
    assert_eq!(made[0].issuer, p.up.base);
    // The ticket is single use.
    let res = link_post(&b, &p, &linked.ticket, "local_zhang", PASSWORD).await;
    assert_eq!(res.status(), 400);

    // Second sign-in in a fresh browser: straight in, as the linked account.
    let b = Browser::new();
    let start = press_upstream_button(&b, &p).await;
    let end = run(&b, &p, &start, "upstream_zhang", "allow", false).await;
    let claims = id_token_claims(&p, &end).await;
    assert_eq!(claims["sub"], local.as_str());
    assert_eq!(claims["amr"], serde_json::json!(["fed"]));
    assert_eq!(claims["acr"], "urn:idp:loa:1");
    assert_eq!(links(&p.down).await.len(), 1);

    // The personal centre lists the link and unlinks it (CSRF-checked).
    let html = b.http.get(p.down.url("/account")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("国家平台"), "{html}");
    let link_id = hidden(&html, "link").unwrap();
    let csrf = hidden(&html, "csrf").unwrap();
    let unlink = |csrf: String| {
        b.http.post(p.down.url("/account/upstreams/unlink")).form(&[("csrf", csrf), ("link", link_id.clone())])
    };
    assert_eq!(unlink("forged".into()).send().await.unwrap().status(), 403);
    assert_eq!(links(&p.down).await.len(), 1);
    assert_eq!(unlink(csrf).send().await.unwrap().status(), 303);
    assert!(links(&p.down).await.is_empty());
}
both!(first_login_links_by_password_then_goes_straight_in, super::first_login_links_by_password_then_goes_straight_in);

async fn trusted_verified_phone_links_automatically(backend: Backend) {
    let p = pair(backend, true).await;
    user_with(&p.up, "upstream_wang", Some(UP_PHONE), "wang@example.org").await;
    let local = user_with(&p.down, "local_wang", Some(UP_PHONE), "wang2@example.org").await;
    let b = Browser::new();
    let start = press_upstream_button(&b, &p).await;
    let end = run(&b, &p, &start, "upstream_wang", "allow", false).await;
    let claims = id_token_claims(&p, &end).await;
    assert_eq!(claims["sub"], local.as_str());
    let made = links(&p.down).await;
    assert_eq!(made.len(), 1);
    assert_eq!((made[0].user_id.as_str(), made[0].method.as_str()), (local.as_str(), "phone"));
    let audited = audit::Entity::find()
        .filter(audit::Column::UserId.eq(local.as_str()))
        .filter(audit::Column::Action.eq("upstream_link"))
        .all(&p.down.state.store)
        .await
        .unwrap();
    assert_eq!(audited.len(), 1, "the automatic link is audited");
}
both!(trusted_verified_phone_links_automatically, super::trusted_verified_phone_links_automatically);

async fn untrusted_upstream_phone_is_not_linked(backend: Backend) {
    let p = pair(backend, false).await;
    user_with(&p.up, "upstream_zhao", Some(UP_PHONE), "zhao@example.org").await;
    user_with(&p.down, "local_zhao", Some(UP_PHONE), "zhao@example.org").await;
    let b = Browser::new();
    let start = press_upstream_button(&b, &p).await;
    let end = run(&b, &p, &start, "upstream_zhao", "allow", false).await;
    ticket_page(&end);
    assert!(links(&p.down).await.is_empty(), "a phone from an upstream without trust_phone links nothing");
}
both!(untrusted_upstream_phone_is_not_linked, super::untrusted_upstream_phone_is_not_linked);

async fn same_email_is_never_a_link(backend: Backend) {
    let p = pair(backend, true).await;
    user_with(&p.up, "upstream_qian", Some(UP_PHONE), "qian@example.org").await;
    user_with(&p.down, "local_qian", Some("13900000002"), "qian@example.org").await;
    let b = Browser::new();
    let start = press_upstream_button(&b, &p).await;
    let end = run(&b, &p, &start, "upstream_qian", "allow", false).await;
    ticket_page(&end);
    assert!(links(&p.down).await.is_empty(), "an equal e-mail must not link accounts");
}
both!(same_email_is_never_a_link, super::same_email_is_never_a_link);

/// A callback the browser is about to deliver, with one parameter replaced.
pub(crate) fn with_param(url: &str, key: &str, value: &str) -> String {
    let mut u = url::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = u.query_pairs().into_owned().collect();
    u.query_pairs_mut().clear();
    for (k, v) in pairs {
        u.query_pairs_mut().append_pair(&k, if k == key { value } else { &v });
    }
    u.to_string()
}

pub(crate) async fn error_text(b: &Browser, url: &str) -> (u16, String) {
    let res = b.http.get(url).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

async fn tampered_or_replayed_state_links_nothing(backend: Backend) {
    let p = pair(backend, true).await;
    user_with(&p.up, "upstream_sun", Some(UP_PHONE), "sun@example.org").await;
    let local = user_with(&p.down, "local_sun", Some(UP_PHONE), "sun2@example.org").await;
    let state_invalid = p.down.state.pages.text("zh-CN", "upstream_state_invalid");
    let b = Browser::new();
    let start = press_upstream_button(&b, &p).await;
    let Stop::Callback(cb) = run(&b, &p, &start, "upstream_sun", "allow", true).await else { panic!("no callback") };

    let (status, body) = error_text(&b, &with_param(&cb, "state", "forged-state-value")).await;
    assert_eq!(status, 400);
    assert!(body.contains(&state_invalid), "{body}");
    // The genuine callback in another browser (which has its own browser id).
    let other = Browser::new();
    other.http.get(p.down.url("/login")).send().await.unwrap();
    let (status, body) = error_text(&other, &cb).await;
    assert_eq!(status, 400);
    assert!(body.contains(&state_invalid), "{body}");
    // A code the upstream never issued fails verification and uses the state up.
    let (status, body) = error_text(&b, &with_param(&cb, "code", "not-a-real-code")).await;
    assert_eq!(status, 502);
    assert!(body.contains(&p.down.state.pages.text("zh-CN", "upstream_failed")), "{body}");
    let (status, body) = error_text(&b, &cb).await;
    assert_eq!(status, 400, "the state was single use");
    assert!(body.contains(&state_invalid), "{body}");
    assert!(links(&p.down).await.is_empty());

    // Control: the same flow untouched does link — so the refusals above are real.
    let start = press_upstream_button(&b, &p).await;
    let Stop::Callback(cb) = run(&b, &p, &start, "upstream_sun", "allow", true).await else { panic!("no callback") };
    let end = run(&b, &p, &cb, "upstream_sun", "allow", false).await;
    assert_eq!(id_token_claims(&p, &end).await["sub"], local.as_str());
    assert_eq!(links(&p.down).await.len(), 1);
    let (status, body) = error_text(&b, &cb).await;
    assert_eq!(status, 400, "a used callback cannot be replayed");
    assert!(body.contains(&state_invalid), "{body}");
}
both!(tampered_or_replayed_state_links_nothing, super::tampered_or_replayed_state_links_nothing);

async fn upstream_access_denied_shows_an_error_page(backend: Backend) {
    let p = pair(backend, true).await;
    user_with(&p.up, "upstream_li", Some(UP_PHONE), "li@example.org").await;
    user_with(&p.down, "local_li", Some(UP_PHONE), "li2@example.org").await;
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("accept-language", "en".parse().unwrap());
    let b = Browser {
        http: reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .default_headers(headers)
            .build()
            .unwrap(),
    };
    let res = b.http.get(auth_url(&p.down, &p.rp, &[])).send().await.unwrap();
    let html = b.http.get(location(&res).unwrap()).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("Sign in with National Platform"), "{html}");
    let req = hidden(&html, "req").unwrap();
    let end = run(&b, &p, &p.down.url(&format!("/login/upstream/gov?req={req}")), "upstream_li", "deny", false).await;
    match end {
        Stop::Page { url, status, body } => {
            assert!(url.contains("/login/upstream/gov/callback") && url.contains("error=access_denied"), "{url}");
            assert_eq!(status, 400);
            assert!(body.contains(&p.down.state.pages.text("en", "upstream_denied")), "{body}");
        }
        other => panic!("expected the error page, got {other:?}"),
    }
    assert!(links(&p.down).await.is_empty());
    let res = b.http.get(p.down.url("/account")).send().await.unwrap();
    assert_eq!(res.status(), 303, "not signed in downstream");
}
both!(upstream_access_denied_shows_an_error_page, super::upstream_access_denied_shows_an_error_page);

/// The newest development-sink message of a channel for a recipient.
async fn sink(app: &TestApp, channel: &str, recipient: &str) -> String {
    use idp::store::entities::dev_message;
    use sea_orm::QueryOrder;
    dev_message::Entity::find()
        .filter(dev_message::Column::Channel.eq(channel))
        .filter(dev_message::Column::Recipient.eq(recipient))
        .order_by_desc(dev_message::Column::CreatedAt)
        .order_by_desc(dev_message::Column::Id)
        .one(&app.state.store)
        .await
        .unwrap()
        .unwrap()
        .body
}

async fn registering_from_the_link_page_links_the_new_account(backend: Backend) {
    let p = pair(backend, false).await;
    user_with(&p.up, "upstream_zhou", Some(UP_PHONE), "zhou@example.org").await;
    let b = Browser::new();
    let start = press_upstream_button(&b, &p).await;
    let (ticket, _) = ticket_page(&run(&b, &p, &start, "upstream_zhou", "allow", false).await);
    let res = b.http.get(p.down.url(&format!("/login/link/register?ticket={ticket}"))).send().await.unwrap();
    let register = location(&res).unwrap();
    let req = query_of(&register).get("req").cloned().unwrap();
    assert!(!req.is_empty(), "{register}");

    let phone = "13900000003";
    let html = b.http.get(&register).send().await.unwrap().text().await.unwrap();
    let captcha_id = hidden(&html, "captcha_id").unwrap();
    let answer = sink(&p.down, "captcha", &captcha_id).await;
    let csrf = hidden(&html, "csrf").unwrap();
    let res = b
        .http
        .post(p.down.url("/register/send"))
        .form(&[
            ("req", req.as_str()),
            ("csrf", csrf.as_str()),
            ("captcha_id", captcha_id.as_str()),
            ("captcha", answer.as_str()),
            ("phone", phone),
            ("action", "send_code"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body = sink(&p.down, "sms", phone).await;
    let code: String = body.chars().filter(char::is_ascii_digit).take(6).collect();
    let res = b
        .http
        .post(p.down.url("/register"))
        .form(&[
            ("req", req.as_str()),
            ("csrf", csrf.as_str()),
            ("action", "register"),
            ("username", "local_zhou"),
            ("phone", phone),
            ("sms_code", code.as_str()),
            ("password", "Passw0rd-new"),
            ("password2", "Passw0rd-new"),
            ("agree", "yes"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    let end = run(&b, &p, &location(&res).unwrap(), "upstream_zhou", "allow", false).await;
    let sub = id_token_claims(&p, &end).await["sub"].as_str().unwrap().to_string();
    let made = links(&p.down).await;
    assert_eq!(made.len(), 1);
    assert_eq!((made[0].user_id.as_str(), made[0].method.as_str()), (sub.as_str(), "registration"));

    // Next time the upstream account goes straight in as the new account.
    let b = Browser::new();
    let start = press_upstream_button(&b, &p).await;
    let end = run(&b, &p, &start, "upstream_zhou", "allow", false).await;
    assert_eq!(id_token_claims(&p, &end).await["sub"], sub.as_str());
}
both!(
    registering_from_the_link_page_links_the_new_account,
    super::registering_from_the_link_page_links_the_new_account
);

/// A1 mini-program style: a trusted, verified phone that no local account
/// holds gets an account on the spot, without any extra step.
async fn auto_register_creates_the_account(backend: Backend) {
    let p = pair_with(backend, true, true).await;
    user_with(&p.up, "upstream_chen", Some(UP_PHONE), "chen@example.org").await;
    let b = Browser::new();
    let start = press_upstream_button(&b, &p).await;
    let end = run(&b, &p, &start, "upstream_chen", "allow", false).await;
    let claims = id_token_claims(&p, &end).await;
    let sub = claims["sub"].as_str().unwrap().to_string();
    let made = p.down.state.users.find(&sub).await.unwrap().expect("account created");
    assert_eq!(made.phone.as_deref(), Some(UP_PHONE));
    assert!(made.phone_verified);
    let link = links(&p.down).await;
    assert_eq!((link.len(), link[0].method.as_str()), (1, "auto_register"));
    // It has no usable password until one is set through "forgot password".
    assert!(p.down.state.users.verify_password(UP_PHONE, "").await.unwrap().is_none());
    assert!(p.down.state.users.verify_password(&made.username, "!no-password").await.unwrap().is_none());
    // Next time: straight in, same account, nothing new created.
    let b = Browser::new();
    let start = press_upstream_button(&b, &p).await;
    let end = run(&b, &p, &start, "upstream_chen", "allow", false).await;
    assert_eq!(id_token_claims(&p, &end).await["sub"], sub.as_str());
    assert_eq!(p.down.state.users.list().await.unwrap().len(), 1);
}
both!(auto_register_creates_the_account, super::auto_register_creates_the_account);

#[test]
fn auto_register_needs_trust_phone() {
    let env = vec![
        ("IDP_UPSTREAMS__GOV__DISPLAY_NAME".to_string(), "国家平台".to_string()),
        ("IDP_UPSTREAMS__GOV__ISSUER".to_string(), "https://id.gov.example".to_string()),
        ("IDP_UPSTREAMS__GOV__CLIENT_ID".to_string(), "c".to_string()),
        ("IDP_UPSTREAMS__GOV__CLIENT_SECRET".to_string(), "s".to_string()),
        ("IDP_UPSTREAMS__GOV__AUTO_REGISTER".to_string(), "true".to_string()),
    ];
    let err = idp::config::Config::load_from(None, &env).unwrap_err().to_string();
    assert!(err.contains("upstreams.gov.auto_register") && err.contains("trust_phone"), "{err}");
}
