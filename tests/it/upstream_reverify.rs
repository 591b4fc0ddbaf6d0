//! Re-verification at the linked upstream provider (A3/A5): an
//! account whose only way in is third-party login (no phone, no password,
//! no factor) proves itself before managing factors by signing in again at
//! its upstream. The upstream is the real second idp of the brokering tests.
use crate::both;
use crate::brokering::*;
use crate::factors::{app_code, between, get, post};
use crate::support::*;
use idp::domain::authn::sessions;
use idp::store::entities::{account_flow, user};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};

/// A local account linked to `up_user` at the upstream and nothing else:
/// linked once by its password, which is then taken away (as accounts made
/// by auto-registration have none).
async fn upstream_only(p: &Pair, up_user: &str, local: &str) -> String {
    user_with(&p.up, up_user, None, &format!("{up_user}@up.example")).await;
    let id = user_with(&p.down, local, None, &format!("{local}@down.example")).await;
    link_by_password(&Browser::new(), p, up_user, local, None).await;
    let mut row: user::ActiveModel =
        user::Entity::find_by_id(id.clone()).one(&p.down.state.store).await.unwrap().unwrap().into();
    row.password_hash = Set(idp::domain::identity::users::NO_PASSWORD.into());
    row.update(&p.down.state.store).await.unwrap();
    assert!(p.down.state.users.verify_password(local, PASSWORD).await.unwrap().is_none());
    id
}

/// A fresh browser signed in downstream through the upstream button.
async fn signed_in_by_upstream(p: &Pair, up_user: &str) -> Browser {
    let b = Browser::new();
    let start = press_upstream_button(&b, p).await;
    let end = run(&b, p, &start, up_user, "allow", false).await;
    assert!(matches!(end, Stop::Client(_)), "{end:?}");
    b
}

/// Presses "使用国家平台验证" on the security page: the upstream's
/// authorization URL, which asks for a new sign-in.
async fn begin_reverify(b: &Browser, p: &Pair) -> String {
    let (status, html) = get(b, p.down.url("/account/security")).await;
    assert_eq!(status, 200);
    assert!(html.contains("使用国家平台验证") && html.contains("/account/security/upstream/gov"), "{html}");
    assert!(!html.contains("reverify-password"), "an account without a password is not asked for one");
    let csrf = hidden(&html, "csrf").unwrap();
    let form = [("csrf", csrf.as_str()), ("return_to", "/account/security")];
    let res = post(b, p.down.url("/account/security/upstream/gov"), &form).await;
    assert_eq!(res.status(), 303);
    let url = location(&res).unwrap();
    let q = query_of(&url);
    assert!(url.starts_with(&p.up.base), "{url}");
    assert_eq!((q["prompt"].as_str(), q["max_age"].as_str()), ("login", "0"), "{url}");
    url
}

/// Re-verified flows ("factors") opened for the account.
async fn flows(p: &Pair, user_id: &str) -> u64 {
    account_flow::Entity::find()
        .filter(account_flow::Column::UserId.eq(user_id))
        .filter(account_flow::Column::Kind.eq("factors"))
        .count(&p.down.state.store)
        .await
        .unwrap()
}

async fn sessions_of(p: &Pair, user_id: &str) -> usize {
    sessions::live_for_user(&p.down.state.store, user_id, p.down.state.clock.now()).await.unwrap().len()
}

fn refused(end: &Stop, status: u16, text: &str) {
    match end {
        Stop::Page { status: s, body, .. } => {
            assert_eq!(*s, status, "{body}");
            assert!(body.contains(text), "{body}");
        }
        other => panic!("expected a refusal page, got {other:?}"),
    }
}

/// The flow id the re-verification returned to the security page with.
fn opened(end: &Stop, p: &Pair) -> (String, String) {
    match end {
        Stop::Page { url, status: 200, body } if url.starts_with(&p.down.url("/account/security?flow=")) => {
            (query_of(url)["flow"].clone(), body.clone())
        }
        other => panic!("expected the re-verified security page, got {other:?}"),
    }
}

async fn upstream_only_account_reverifies_then_enrols_totp(backend: Backend) {
    let p = pair(backend, false).await;
    let id = upstream_only(&p, "up_liu", "only_liu").await;
    let b = signed_in_by_upstream(&p, "up_liu").await;
    let url = begin_reverify(&b, &p).await;
    let end = run(&b, &p, &url, "up_liu", "allow", false).await;
    let (flow, page) = opened(&end, &p);
    assert_eq!(flows(&p, &id).await, 1);

    let csrf = hidden(&page, "csrf").unwrap();
    let form = [("csrf", csrf.as_str()), ("flow", &flow), ("action", "totp_start")];
    let res = post(&b, p.down.url("/account/security"), &form).await;
    assert_eq!(res.status(), 200);
    let secret = between(&res.text().await.unwrap(), "<code id=\"totp-secret\">", "</code>")[0].to_string();
    let code = app_code(&secret, p.down.state.clock.now());
    let form = [("csrf", csrf.as_str()), ("flow", &flow), ("action", "totp_confirm"), ("code", &code)];
    assert_eq!(post(&b, p.down.url("/account/security"), &form).await.status(), 200);
    assert!(p.down.state.totp.enrolled(&id).await.unwrap());
}
both!(upstream_only_account_reverifies_then_enrols_totp, super::upstream_only_account_reverifies_then_enrols_totp);

async fn another_upstream_account_does_not_verify(backend: Backend) {
    let p = pair(backend, false).await;
    let ma = upstream_only(&p, "up_mali", "only_ma").await;
    let niu = upstream_only(&p, "up_niuer", "only_niu").await;
    let b = signed_in_by_upstream(&p, "up_mali").await;
    let (ma_sessions, niu_sessions) = (sessions_of(&p, &ma).await, sessions_of(&p, &niu).await);

    // At the upstream the person signs in as another (linked) user.
    let url = begin_reverify(&b, &p).await;
    let end = run(&b, &p, &url, "up_niuer", "allow", false).await;
    refused(&end, 403, &p.down.state.pages.text("zh-CN", "upstream_reverify_other_account"));
    assert_eq!((flows(&p, &ma).await, flows(&p, &niu).await), (0, 0), "nothing is marked");
    assert_eq!(links(&p.down).await.len(), 2, "nothing is linked");
    assert_eq!((sessions_of(&p, &ma).await, sessions_of(&p, &niu).await), (ma_sessions, niu_sessions));
    let (status, html) = get(&b, p.down.url("/account/security")).await;
    assert!(status == 200 && html.contains("使用国家平台验证"), "still the same account, not re-verified");

    // Control: the linked upstream user does verify, in the same browser.
    let url = begin_reverify(&b, &p).await;
    opened(&run(&b, &p, &url, "up_mali", "allow", false).await, &p);
    assert_eq!(flows(&p, &ma).await, 1);

    // An account without a link at the upstream is not offered it and cannot start it.
    user_with(&p.down, "local_plain", None, "plain@down.example").await;
    let plain = crate::factors::password_sign_in(&p.down, "local_plain").await;
    let (_, html) = get(&plain, p.down.url("/account/security")).await;
    assert!(!html.contains("/account/security/upstream/gov"), "{html}");
    assert!(html.contains("reverify-password"), "an account with a password re-verifies with it");
    let csrf = hidden(&html, "csrf").unwrap();
    let res = post(&plain, p.down.url("/account/security/upstream/gov"), &[("csrf", &csrf)]).await;
    assert_eq!(res.status(), 400);
}
both!(another_upstream_account_does_not_verify, super::another_upstream_account_does_not_verify);

async fn reverify_state_is_single_use_and_never_signs_in(backend: Backend) {
    let p = pair(backend, false).await;
    let id = upstream_only(&p, "up_yang", "only_yang").await;
    let state_invalid = p.down.state.pages.text("zh-CN", "upstream_state_invalid");
    let b = signed_in_by_upstream(&p, "up_yang").await;
    let url = begin_reverify(&b, &p).await;
    let Stop::Callback(cb) = run(&b, &p, &url, "up_yang", "allow", true).await else { panic!("no callback") };

    // Another browser cannot use it.
    let other = Browser::new();
    other.http.get(p.down.url("/login")).send().await.unwrap();
    let (status, body) = error_text(&other, &cb).await;
    assert!(status == 400 && body.contains(&state_invalid), "{body}");
    // This one can, once.
    let res = b.http.get(&cb).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert!(location(&res).unwrap().starts_with(&p.down.url("/account/security?flow=")));
    assert_eq!(flows(&p, &id).await, 1);
    let (status, body) = error_text(&b, &cb).await;
    assert!(status == 400 && body.contains(&state_invalid), "a replay is refused: {body}");
    assert_eq!(flows(&p, &id).await, 1);

    // The session that asked has ended meanwhile: the answer signs nobody in.
    let url = begin_reverify(&b, &p).await;
    let Stop::Callback(cb) = run(&b, &p, &url, "up_yang", "allow", true).await else { panic!("no callback") };
    for s in sessions::live_for_user(&p.down.state.store, &id, p.down.state.clock.now()).await.unwrap() {
        idp::oidc::logout::end_session(&p.down.state, &s).await.unwrap();
    }
    let (status, body) = error_text(&b, &cb).await;
    assert_eq!(status, 400);
    assert!(body.contains(&p.down.state.pages.text("zh-CN", "upstream_reverify_session")), "{body}");
    assert_eq!(flows(&p, &id).await, 1);
    assert_eq!(sessions_of(&p, &id).await, 0);
    assert_eq!(b.http.get(p.down.url("/account")).send().await.unwrap().status(), 303, "not signed in");

    // An expired state is refused.
    let b = signed_in_by_upstream(&p, "up_yang").await;
    let url = begin_reverify(&b, &p).await;
    let Stop::Callback(cb) = run(&b, &p, &url, "up_yang", "allow", true).await else { panic!("no callback") };
    p.down.state.clock.advance(11 * 60);
    let (status, body) = error_text(&b, &cb).await;
    assert!(status == 400 && body.contains(&state_invalid), "{body}");
    assert_eq!(flows(&p, &id).await, 1);
}
both!(reverify_state_is_single_use_and_never_signs_in, super::reverify_state_is_single_use_and_never_signs_in);

/// With a window of 0 s, a sign-in one second before the ID token was
/// issued is already too old: the refusal an upstream that ignored
/// `max_age=0` (and returned an old `auth_time`) gets.
async fn stale_upstream_sign_in_is_refused(backend: Backend) {
    let p = pair_tuned(backend, |up| up.reverify_max_age = 0).await;
    let id = upstream_only(&p, "up_heli", "only_he").await;
    let b = signed_in_by_upstream(&p, "up_heli").await;
    let url = begin_reverify(&b, &p).await;
    let Stop::Callback(cb) = run(&b, &p, &url, "up_heli", "allow", true).await else { panic!("no callback") };
    // The upstream stamps auth_time at its sign-in, iat when the code is
    // redeemed, both on its own clock: a second passes there in between.
    p.up.state.clock.advance(1);
    let (status, body) = error_text(&b, &cb).await;
    assert_eq!(status, 400);
    assert!(body.contains(&p.down.state.pages.text("zh-CN", "upstream_reverify_not_fresh")), "{body}");
    assert_eq!(flows(&p, &id).await, 0);
}
both!(stale_upstream_sign_in_is_refused, super::stale_upstream_sign_in_is_refused);
