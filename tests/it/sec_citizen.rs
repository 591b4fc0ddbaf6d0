//! Citizen sign-in security (docs/security.md): the sign-in throttle counts per
//! account however the identifier is spelled, and on every path that
//! checks a citizen password (A3); forgot-password step 2 is no ID-number
//! oracle (A4); a phone appeal proves the claimed phone and a name appeal
//! renames the appellant's account when approved (A8).
use crate::accounts::{operator, reset_resend, reset_start, send_code};
use crate::both;
use crate::factors::{audited, get, password_sign_in, post};
use crate::support::*;
use idp::domain::identity::users::NewUser;
use idp::store::entities::dev_message;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

async fn create(app: &TestApp, username: &str, phone: Option<&str>, id_number: Option<&str>, name: Option<&str>) {
    let new = NewUser {
        username: username.into(),
        password: PASSWORD.into(),
        phone: phone.map(String::from),
        id_number: id_number.map(String::from),
        name: name.map(String::from),
        ..Default::default()
    };
    app.state.users.create(new).await.unwrap();
}

/// One password sign-in on `/login` from a fresh browser (no captcha
/// answered); returns the status and the page.
async fn login(app: &TestApp, who: &str, password: &str) -> (u16, String) {
    let b = Browser::new();
    let (_, html) = get(&b, app.url("/login")).await;
    let csrf = hidden(&html, "csrf").unwrap();
    let form = [("req", ""), ("csrf", csrf.as_str()), ("username", who), ("password", password)];
    let res = post(&b, app.url("/login"), &form).await;
    (res.status().as_u16(), res.text().await.unwrap())
}

/// Wrong passwords under each spelling; returns their statuses.
async fn wrong_each(app: &TestApp, spellings: &[&str]) -> Vec<u16> {
    let mut statuses = Vec::new();
    for who in spellings {
        statuses.push(login(app, who, "Wrong-horse-1").await.0);
    }
    statuses
}

/// The text of a locale key up to its first placeholder.
fn text_before_placeholder(app: &TestApp, key: &str) -> String {
    let t = app.state.pages.text("zh-CN", key);
    t.split('{').next().unwrap().to_string()
}

async fn lockout_by_respelling(backend: Backend) {
    let app = spawn(backend).await;
    create(&app, "respell_p1", Some("13800138000"), None, None).await;
    create(&app, "respell_i1", None, Some("11010519491231002X"), None).await;

    // Five spellings of one phone: one counter. The captcha is demanded
    // from the third try on (two failures on the account), whatever the
    // spelling, and then the account is locked.
    let phone = ["13800138000", "+8613800138000", "+86+8613800138000", "+86+86+8613800138000", " +86 13800138000"];
    assert_eq!(wrong_each(&app, &phone).await, [401, 401, 400, 400, 400]);
    let (status, body) = login(&app, "+86+86+86+8613800138000", PASSWORD).await;
    assert_eq!(status, 429, "locked even with the right password under a new spelling: {body}");
    assert!(body.contains(&text_before_placeholder(&app, "login_locked")), "{body}");
    assert_eq!(login(&app, "respell_p1", PASSWORD).await.0, 429, "the username reaches the same account");

    // ID numbers: full-width digits, lower-case x, full-width X.
    let id = [
        "11010519491231002X",
        "11010519491231002x",
        "１１０１０５１９４９１２３１００２X",
        "１１０１０５１９４９１２３１００２x",
        "１１０１０５１９４９１２３１００２Ｘ",
    ];
    assert_eq!(wrong_each(&app, &id).await, [401, 401, 400, 400, 400]);
    assert_eq!(login(&app, "１１０１０５19491231002ｘ", PASSWORD).await.0, 429);

    // An identifier naming no account is throttled on its canonical form,
    // the same answers as for an account (no enumeration). (By now the
    // address has ten failures, so every try wants the captcha.)
    let unknown = ["13900000000", "+8613900000000", "+86+8613900000000", "+86+86+8613900000000", "13900000000 "];
    assert_eq!(wrong_each(&app, &unknown).await, [400; 5]);
    assert_eq!(login(&app, "+86+86+86+8613900000000", PASSWORD).await.0, 429);
}
both!(lockout_counts_the_account_not_the_spelling, super::lockout_by_respelling);

/// Re-verification by password (an account without a phone) shares the
/// account's counter with `/login`, however `/login` was spelled.
async fn reverify_shares_the_lock(backend: Backend) {
    let app = spawn(backend).await;
    create(&app, "respell_r1", None, Some("11010519491231002X"), None).await;
    let b = password_sign_in(&app, "respell_r1").await;
    let spellings = [
        "11010519491231002x",
        "１１０１０５１９４９１２３１００２X",
        "１１０１０５１９４９１２３１００２Ｘ",
        "１１０１０５１９４９１２３１００２x",
        "11010519491231002X",
    ];
    wrong_each(&app, &spellings).await;
    let (_, html) = get(&b, app.url("/account/security")).await;
    let csrf = hidden(&html, "csrf").unwrap();
    let form = [("csrf", csrf.as_str()), ("action", "reverify"), ("method", "password"), ("password", PASSWORD)];
    let res = post(&b, app.url("/account/security"), &form).await;
    assert_eq!(res.status(), 429, "the account is locked on every password path");
}
both!(reverify_password_shares_the_account_lock, super::reverify_shares_the_lock);

/// The current password on `/account/password` is a sign-in secret: wrong
/// guesses count in the account's sign-in throttle.
async fn old_password_throttled(backend: Backend) {
    let app = spawn(backend).await;
    create(&app, "pwchange01", Some("13500002222"), None, None).await;
    let b = password_sign_in(&app, "pwchange01").await;
    let (_, html) = get(&b, app.url("/account/password")).await;
    let csrf = hidden(&html, "csrf").unwrap();
    let change = |old: &'static str| {
        let form = [
            ("csrf", csrf.clone()),
            ("old_password", old.to_string()),
            ("password", "New-pass-123".to_string()),
            ("password2", "New-pass-123".to_string()),
            ("sms_code", "000000".to_string()),
        ];
        let b = &b;
        let app = &app;
        async move {
            let res = b.http.post(app.url("/account/password")).form(&form).send().await.unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        }
    };
    let wrong = app.state.pages.text("zh-CN", "account_old_password_wrong");
    for _ in 0..5 {
        let (status, body) = change("Wrong-horse-1").await;
        assert_eq!(status, 400);
        assert!(body.contains(&wrong), "{body}");
    }
    let (status, body) = change(PASSWORD).await;
    assert_eq!(status, 429, "locked: not even the right password is checked");
    assert!(body.contains(&text_before_placeholder(&app, "account_password_locked")), "{body}");
    // One counter: the sign-in page is locked for this account too.
    assert_eq!(login(&app, "13500002222", PASSWORD).await.0, 429);
}
both!(old_password_check_is_throttled, super::old_password_throttled);

async fn forgot_no_id_oracle(backend: Backend) {
    let app = spawn(backend).await;
    create(&app, "idreset_01", Some("15000000021"), Some("11010519491231002X"), None).await;
    let b = Browser::new();
    let flow = reset_start(&app, &b, "idreset_01").await;
    let (_, page) = get(&b, app.url(&format!("/forgot/verify?flow={flow}"))).await;
    assert!(page.contains("name=\"id_number\""), "a real-name account is asked for its ID number");
    assert!(!page.contains("002X") && !page.contains("002x"), "no digit of the ID number is shown: {page}");
    let csrf = hidden(&page, "csrf").unwrap();
    let verify = |id: &str, code: &str| {
        let form = [
            ("flow", flow.clone()),
            ("csrf", csrf.clone()),
            ("action", "verify".to_string()),
            ("sms_code", code.to_string()),
            ("id_number", id.to_string()),
        ];
        let b = &b;
        let app = &app;
        async move {
            let res = b.http.post(app.url("/forgot/verify")).form(&form).send().await.unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        }
    };
    // With a guessed code (step 1 sent one the attacker does not have): a
    // wrong and a right ID number get the same answer.
    let failed = app.state.pages.text("zh-CN", "forgot_verify_failed");
    let (s1, wrong_id) = verify("110105198001010016", "123456").await;
    let (s2, right_id) = verify("11010519491231002X", "123456").await;
    assert_eq!((s1, s2), (400, 400));
    assert!(wrong_id.contains(&failed) && right_id.contains(&failed), "one answer for any mismatch: {wrong_id}");
    // With a code sent, each wrong ID number spends one of the code's tries:
    // after five, even the right ID number and code fail.
    reset_resend(&app, &b, &flow).await;
    let code = six_digits(&sink(&app, "sms", "15000000021").await.unwrap());
    for _ in 0..5 {
        let (status, body) = verify("110105198001010016", &code).await;
        assert_eq!(status, 400);
        assert!(body.contains(&failed));
    }
    let (status, _) = verify("11010519491231002X", &code).await;
    assert_eq!(status, 400, "the ID number cannot be guessed past the code's tries");
}
both!(forgot_password_is_no_id_number_oracle, super::forgot_no_id_oracle);

/// Files an appeal from browser `b`: a code to the contact phone, then the
/// form with `claimed_code` for the claimed phone.
async fn file(
    app: &TestApp,
    b: &Browser,
    kind: &str,
    claimed: &str,
    contact: &str,
    claimed_code: &str,
) -> (u16, String) {
    let (_, html) = send_code(app, b, "/appeal", "", contact, &[]).await;
    let code = six_digits(&sink(app, "sms", contact).await.unwrap());
    let form = [
        ("csrf", hidden(&html, "csrf").unwrap()),
        ("action", "file".to_string()),
        ("kind", kind.to_string()),
        ("claimed_value", claimed.to_string()),
        ("name", "李四".to_string()),
        ("id_number", "110105198001010016".to_string()),
        ("phone", contact.to_string()),
        ("sms_code", code),
        ("claimed_sms_code", claimed_code.to_string()),
        ("details", "这个号码一直是我本人在使用，注册时提示已被占用。".to_string()),
    ];
    let res = b.http.post(app.url("/appeal")).form(&form).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// The only pending appeal's id, from the operator CLI.
fn pending_appeal(app: &TestApp) -> String {
    let out = operator(app, &["appeal", "list", "--status", "pending", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    list[0]["id"].as_str().unwrap().to_string()
}

async fn phone_appeal_proves_claimed_phone(backend: Backend) {
    let app = spawn(backend).await;
    create(&app, "holder_0002", Some("13300001111"), None, None).await;
    create(&app, "appellant2", Some("13300002222"), None, None).await;
    let b = password_sign_in(&app, "appellant2").await;
    // The contact phone alone does not prove the claimed phone.
    let (status, html) = file(&app, &b, "phone", "13300001111", "13300002222", "").await;
    assert_eq!(status, 400, "{html}");
    assert!(html.contains(&app.state.pages.text("zh-CN", "appeal_claimed_code_wrong")), "{html}");
    // A code sent to the claimed phone proves it.
    let (_, html) = get(&b, app.url("/appeal")).await;
    let captcha_id = hidden(&html, "captcha_id").unwrap();
    let answer = sink(&app, "captcha", &captcha_id).await.unwrap();
    let form = [
        ("csrf", hidden(&html, "csrf").unwrap()),
        ("captcha_id", captcha_id),
        ("captcha", answer),
        ("kind", "phone".to_string()),
        ("claimed_value", "13300001111".to_string()),
        ("action", "send_claimed_code".to_string()),
    ];
    let res = b.http.post(app.url("/appeal")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let claimed_code = six_digits(&sink(&app, "sms", "13300001111").await.unwrap());
    let (status, html) = file(&app, &b, "phone", "13300001111", "13300002222", &claimed_code).await;
    assert_eq!(status, 200, "{html}");
    let id = pending_appeal(&app);
    let out = operator(&app, &["appeal", "approve", &id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let holder = app.state.users.find_by_login("holder_0002").await.unwrap().unwrap();
    assert_eq!(holder.phone, None);
    let appellant = app.state.users.find_by_login("appellant2").await.unwrap().unwrap();
    assert_eq!(appellant.phone.as_deref(), Some("13300001111"));
}
both!(phone_appeal_proves_the_claimed_phone, super::phone_appeal_proves_claimed_phone);

async fn name_appeal_renames(backend: Backend) {
    let app = spawn(backend).await;
    create(&app, "holder_0003", Some("13300005555"), None, Some("王五")).await;
    create(&app, "appellant3", Some("13300004444"), None, None).await;
    // A name appeal corrects one's own account: not without one.
    let (status, html) = file(&app, &Browser::new(), "name", "王五", "13300006666", "").await;
    assert_eq!(status, 400, "{html}");
    assert!(html.contains(&app.state.pages.text("zh-CN", "appeal_name_needs_account")), "{html}");
    let b = password_sign_in(&app, "appellant3").await;
    let (status, html) = file(&app, &b, "name", "王五", "13300004444", "").await;
    assert_eq!(status, 200, "{html}");
    let id = pending_appeal(&app);
    let out = operator(&app, &["appeal", "approve", &id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let appellant = app.state.users.find_by_login("appellant3").await.unwrap().unwrap();
    assert_eq!(appellant.name.as_deref(), Some("王五"), "approval renames the appellant's account");
    assert_eq!(audited(&app, &appellant.id, "appeal_renamed").await, std::slice::from_ref(&id));
    let outcome = dev_message::Entity::find()
        .filter(dev_message::Column::Recipient.eq("13300004444"))
        .filter(dev_message::Column::Purpose.eq("notice"))
        .all(&app.state.store)
        .await
        .unwrap();
    assert!(outcome.iter().any(|m| m.body.contains(&id)), "the outcome goes out by SMS");
}
both!(name_appeal_approval_renames_the_account, super::name_appeal_renames);
