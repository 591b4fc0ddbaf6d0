//! Gaps against the manuals (issue 20), over HTTP on both databases:
//! appeal evidence shown only to reviewers, an approved name appeal
//! renaming, the one-working-day review promise (due time, overdue list,
//! one reminder), and the takeover of an identity by the bank card's four
//! elements (B5).
use crate::accounts::send_code;
use crate::both;
use crate::factors::{app_code, citizen, get, password_sign_in, post};
use crate::identity::{ZHANG, app_with, sms_step, submit};
use crate::support::*;
use idp::domain::staff::{self, Granter, Role};
use idp::store::entities::{appeal, appeal_evidence, audit, dev_message, identity};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR-evidence-png";
const JPEG: &[u8] = b"\xff\xd8\xff\xe0\0\x10JFIF-evidence-jpeg";

/// A reviewer past the console's gate (staff role, L3, a fresh app code).
async fn reviewer(app: &TestApp, username: &str, phone: &str) -> Browser {
    reviewer_with_secret(app, username, phone).await.0
}

/// Signs a reviewer in again and past the console's gate (after the clock
/// moved on by days, the session and its strong factor are stale).
async fn console_again(app: &TestApp, username: &str, secret: &str) -> Browser {
    crate::console::console(app, username, secret).await
}

async fn reviewer_with_secret(app: &TestApp, username: &str, phone: &str) -> (Browser, String) {
    let id = citizen(app, username, phone).await;
    idp::domain::assurance::set_proofing_level(&app.state.store, &id, 3).await.unwrap();
    let now = app.state.clock.now();
    staff::grant(&app.state.store, &app.state.users, Granter::Cli("test"), username, Role::Reviewer, None, now)
        .await
        .unwrap();
    let enrolment = app.state.totp.start(&id, username, now).await.unwrap().unwrap();
    app.state.totp.confirm(&id, username, &app_code(&enrolment.secret, now), now).await.unwrap().unwrap();
    idp::store::entities::second_step_pref::ActiveModel {
        user_id: Set(id.clone()),
        required: Set(false),
        updated_at: Set(now),
    }
    .insert(&app.state.store)
    .await
    .unwrap();
    (console_again(app, username, &enrolment.secret).await, enrolment.secret)
}

/// A `multipart/form-data` body of text fields and `evidence` files.
fn multipart(fields: &[(&str, String)], files: &[(&str, &str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "----idp-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (k, v) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").as_bytes(),
        );
    }
    for (name, mime, bytes) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"evidence\"; filename=\"{name}\"\r\nContent-Type: {mime}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// The appeal form's fields for a phone appeal about `claimed`, proven by
/// the contact phone's `code`.
fn appeal_fields(csrf: &str, claimed: &str, contact: &str, code: &str) -> Vec<(&'static str, String)> {
    vec![
        ("csrf", csrf.to_string()),
        ("action", "file".to_string()),
        ("kind", "phone".to_string()),
        ("claimed_value", claimed.to_string()),
        ("name", "李四".to_string()),
        ("id_number", "110105198001010016".to_string()),
        ("phone", contact.to_string()),
        ("sms_code", code.to_string()),
        ("claimed_sms_code", String::new()),
        ("details", "这个号码一直是我本人在使用，注册时提示已被占用。".to_string()),
    ]
}

async fn post_multipart(
    app: &TestApp,
    b: &Browser,
    fields: &[(&str, String)],
    files: &[(&str, &str, &[u8])],
) -> (u16, String) {
    let (ct, body) = multipart(fields, files);
    let res = b.http.post(app.url("/appeal")).header("content-type", ct).body(body).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// The id shown after filing.
fn filed_id(html: &str) -> String {
    let start = html.find("id=\"appeal-id\">").expect("filed") + "id=\"appeal-id\">".len();
    html[start..start + html[start..].find('<').unwrap()].to_string()
}

async fn evidence_shown_to_reviewers_only(backend: Backend) {
    let app = app_with(backend, |_| {}).await;
    citizen(&app, "ev_holder", "13600000001").await;
    let rev = reviewer(&app, "ev_reviewer", "13600000009").await;
    // The appellant has the phone as contact (so the claimed phone is proven).
    let b = Browser::new();
    let (status, html) = send_code(&app, &b, "/appeal", "", "13600000001", &[]).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("enctype=\"multipart/form-data\"") && html.contains("name=\"evidence\""), "{html}");
    let code = six_digits(&sink(&app, "sms", "13600000001").await.unwrap());
    let fields = appeal_fields(&hidden(&html, "csrf").unwrap(), "13600000001", "13600000001", &code);
    // A GIF named .png with an image/png type is refused by its bytes; what
    // was typed stays in the form.
    let (status, html) = post_multipart(&app, &b, &fields, &[("photo.png", "image/png", b"GIF89a-not-allowed")]).await;
    assert_eq!(status, 400, "{html}");
    assert!(html.contains(&app.state.pages.text("zh-CN", "appeal_evidence_type")), "{html}");
    assert!(html.contains("这个号码一直是我本人在使用"), "the details typed are kept");
    // Over 2 MiB: refused.
    let big = [PNG, &vec![0u8; 2 * 1024 * 1024][..]].concat();
    let (status, html) = post_multipart(&app, &b, &fields, &[("big.png", "image/png", &big)]).await;
    assert_eq!(status, 400, "{html}");
    assert!(html.contains(&app.state.pages.text("zh-CN", "appeal_evidence_size")), "{html}");
    // Four files: refused.
    let four = [("a.png", "image/png", PNG); 4];
    let (status, html) = post_multipart(&app, &b, &fields, &four).await;
    assert_eq!(status, 400, "{html}");
    assert!(html.contains(&app.state.pages.text("zh-CN", "appeal_evidence_count")), "{html}");
    assert_eq!(appeal::Entity::find().count(&app.state.store).await.unwrap(), 0, "nothing was filed");
    // A PNG and a JPEG (the JPEG sent under a misleading type): filed.
    let files = [("id-front.png", "image/png", PNG), ("id-back.bin", "application/octet-stream", JPEG)];
    let (status, html) = post_multipart(&app, &b, &fields, &files).await;
    assert_eq!(status, 200, "{html}");
    let id = filed_id(&html);
    assert!(html.contains("id=\"appeal-due\""), "the due date is shown: {html}");

    // The reviewer sees both images in the appeal's detail view.
    let (status, html) = get(&rev, app.url(&format!("/admin/appeals/{id}"))).await;
    assert_eq!(status, 200, "{html}");
    let ids: Vec<&str> = crate::factors::between(&html, "data-evidence=\"", "\"");
    assert_eq!(ids.len(), 2, "{html}");
    let (_, list) = get(&rev, app.url("/admin/appeals")).await;
    assert!(list.contains(&format!("href=\"/admin/appeals/{id}\"")), "{list}");
    let mut seen = Vec::new();
    for e in &ids {
        let res = rev.http.get(app.url(&format!("/admin/appeals/{id}/evidence/{e}"))).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let h = res.headers().clone();
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["content-disposition"], "inline");
        seen.push((h["content-type"].to_str().unwrap().to_string(), res.bytes().await.unwrap().to_vec()));
    }
    seen.sort();
    assert_eq!(seen, vec![("image/jpeg".to_string(), JPEG.to_vec()), ("image/png".to_string(), PNG.to_vec())]);

    // Another citizen (signed in) and a visitor never see them.
    citizen(&app, "ev_other", "13600000002").await;
    let other = password_sign_in(&app, "ev_other").await;
    let url = app.url(&format!("/admin/appeals/{id}/evidence/{}", ids[0]));
    assert_eq!(other.http.get(&url).send().await.unwrap().status(), 403);
    assert_eq!(get(&other, app.url(&format!("/admin/appeals/{id}"))).await.0, 403);
    let res = Browser::new().http.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 303, "a visitor is sent to sign in");
    // The status page shows the state and the due date, not the evidence.
    let (status, page) = get(&other, app.url(&format!("/appeal/status?id={id}&phone=13600000001"))).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("data-status=\"pending\"") && page.contains("id=\"appeal-due\""), "{page}");
    assert!(!page.contains("/evidence/"), "{page}");
    assert_eq!(get(&other, app.url(&format!("/appeal/status?id={id}&phone=13600000002"))).await.0, 404);

    // The decision starts the retention: 30 days later the purge deletes them.
    let (_, html) = get(&rev, app.url(&format!("/admin/appeals/{id}"))).await;
    let csrf = hidden(&html, "csrf").unwrap();
    let res = post(&rev, app.url(&format!("/admin/appeals/{id}")), &[("csrf", &csrf), ("action", "approve")]).await;
    assert_eq!(res.status(), 200);
    let db = &app.state.store;
    let kept = appeal_evidence::Entity::find().filter(appeal_evidence::Column::AppealId.eq(&id)).all(db).await.unwrap();
    let now = app.state.clock.now();
    assert!(kept.iter().all(|e| e.expires_at == Some(now + 30 * 86400)), "{:?}", kept.len());
    idp::store::purge_expired(db, now + 29 * 86400).await.unwrap();
    assert_eq!(appeal_evidence::Entity::find().count(db).await.unwrap(), 2);
    idp::store::purge_expired(db, now + 31 * 86400).await.unwrap();
    assert_eq!(appeal_evidence::Entity::find().count(db).await.unwrap(), 0, "purged after the retention");
}
both!(appeal_evidence_is_shown_to_reviewers_only, super::evidence_shown_to_reviewers_only);

async fn name_appeal_approved_in_console_renames(backend: Backend) {
    let app = app_with(backend, |_| {}).await;
    let rev = reviewer(&app, "nm_reviewer", "13600000019").await;
    let holder = citizen(&app, "nm_holder", "13600000011").await;
    idp::store::entities::user::Entity::update_many()
        .col_expr(idp::store::entities::user::Column::Name, sea_orm::sea_query::Expr::value("王五"))
        .filter(idp::store::entities::user::Column::Id.eq(&holder))
        .exec(&app.state.store)
        .await
        .unwrap();
    let appellant = citizen(&app, "nm_appellant", "13600000012").await;
    let b = password_sign_in(&app, "nm_appellant").await;
    let (_, html) = send_code(&app, &b, "/appeal", "", "13600000012", &[]).await;
    let code = six_digits(&sink(&app, "sms", "13600000012").await.unwrap());
    let mut fields = appeal_fields(&hidden(&html, "csrf").unwrap(), "王五", "13600000012", &code);
    fields[2].1 = "name".into();
    let (status, html) = post_multipart(&app, &b, &fields, &[("me.jpg", "image/jpeg", JPEG)]).await;
    assert_eq!(status, 200, "{html}");
    let id = filed_id(&html);
    let (_, html) = get(&rev, app.url(&format!("/admin/appeals/{id}"))).await;
    let csrf = hidden(&html, "csrf").unwrap();
    let res = post(&rev, app.url(&format!("/admin/appeals/{id}")), &[("csrf", &csrf), ("action", "approve")]).await;
    assert_eq!(res.status(), 200);
    let u = app.state.users.find(&appellant).await.unwrap().unwrap();
    assert_eq!(u.name.as_deref(), Some("王五"), "the approval renamed the appellant's account");
    let renamed = audit::Entity::find()
        .filter(audit::Column::Action.eq("appeal_renamed"))
        .filter(audit::Column::UserId.eq(&appellant))
        .count(&app.state.store)
        .await
        .unwrap();
    assert_eq!(renamed, 1);
}
both!(name_appeal_approved_in_the_console_renames, super::name_appeal_approved_in_console_renames);

/// One run of the upkeep's reminder: how many appeals it newly reminded.
async fn reminded(app: &TestApp) -> Result<usize, sea_orm::DbErr> {
    idp::domain::identity::appeals::remind_overdue(&app.state.store, &app.state, app.state.clock.now()).await
}

async fn overdue_appeal_listed_and_reminded_once(backend: Backend) {
    let app = app_with(backend, |_| {}).await;
    let (rev, secret) = reviewer_with_secret(&app, "od_reviewer", "13600000029").await;
    citizen(&app, "od_holder", "13600000021").await;
    let b = Browser::new();
    let (_, html) = send_code(&app, &b, "/appeal", "", "13600000021", &[]).await;
    let code = six_digits(&sink(&app, "sms", "13600000021").await.unwrap());
    // A plain url-encoded post (no evidence) is still accepted.
    let fields = appeal_fields(&hidden(&html, "csrf").unwrap(), "13600000021", "13600000021", &code);
    let res = b.http.post(app.url("/appeal")).form(&fields).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let id = filed_id(&res.text().await.unwrap());
    let due = idp::store::entities::appeal_due::Entity::find_by_id(id.clone())
        .one(&app.state.store)
        .await
        .unwrap()
        .unwrap()
        .due_at;
    let now = app.state.clock.now();
    assert!(due > now + 3600 && due <= now + 4 * 86400, "due by the end of the next working day");
    let (_, list) = get(&rev, app.url("/admin/appeals?status=overdue")).await;
    assert!(!list.contains(&format!("data-appeal=\"{id}\"")), "not overdue yet: {list}");
    assert_eq!(reminded(&app).await.unwrap(), 0);

    // Past the due time: listed as overdue, shown so to the citizen.
    app.state.clock.advance(due - now + 60);
    let rev = console_again(&app, "od_reviewer", &secret).await;
    let (status, list) = get(&rev, app.url("/admin/appeals?status=overdue")).await;
    assert_eq!(status, 200);
    assert!(list.contains(&format!("data-appeal=\"{id}\" data-status=\"pending\" data-overdue=\"1\"")), "{list}");
    let (_, page) = get(&b, app.url(&format!("/appeal/status?id={id}&phone=13600000021"))).await;
    assert!(page.contains("data-overdue=\"1\""), "{page}");
    // The reviewers are reminded once, however often the upkeep runs.
    assert_eq!(reminded(&app).await.unwrap(), 1);
    app.state.clock.advance(60);
    assert_eq!(reminded(&app).await.unwrap(), 0);
    let text = app.state.pages.text(&app.state.config.default_locale, "sms_appeals_overdue");
    let notices = dev_message::Entity::find()
        .filter(dev_message::Column::Recipient.eq("13600000029"))
        .filter(dev_message::Column::Body.eq(text.clone()))
        .count(&app.state.store)
        .await
        .unwrap();
    assert_eq!(notices, 1, "one reminder to the reviewer");
    let audited = audit::Entity::find()
        .filter(audit::Column::Action.eq("appeal_overdue_reminded"))
        .count(&app.state.store)
        .await
        .unwrap();
    assert_eq!(audited, 1);
    // Decided: no longer overdue.
    let csrf = hidden(&list, "csrf").unwrap();
    let form = [("csrf", csrf.as_str()), ("action", "reject"), ("reason", "材料不足")];
    assert_eq!(post(&rev, app.url(&format!("/admin/appeals/{id}")), &form).await.status(), 200);
    let (_, list) = get(&rev, app.url("/admin/appeals?status=overdue")).await;
    assert!(!list.contains(&format!("data-appeal=\"{id}\"")), "{list}");
}
both!(overdue_appeal_is_listed_and_reminded_once, super::overdue_appeal_listed_and_reminded_once);

/// The bank card of 张三 in the sandbox fixture: a debit card, and the
/// phone the bank has on file.
const CARD: &str = "6222020200112233446";
const BANK_PHONE: &str = "13800000001";

async fn bank_card_takeover(backend: Backend) {
    let app = app_with(backend, |_| {}).await;
    let client = app.confidential().await;
    let (old, _, ob) = crate::identity::citizen(&app, &client, "13600000031").await;
    let flow = sms_step(&app, &ob, "/identity/verify", "13600000031").await;
    assert_eq!(submit(&app, &ob, "/identity/verify", &flow, &ZHANG).await.0, 200);
    // The person's new account: the identity is taken; the page offers the
    // bank card besides the face check.
    let (new, _, nb) = crate::identity::citizen(&app, &client, "13600000032").await;
    let flow = sms_step(&app, &nb, "/identity/verify", "13600000032").await;
    let (status, body) = submit(&app, &nb, "/identity/verify", &flow, &ZHANG).await;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("id=\"takeover-bank-card\""), "{body}");

    let path = "/identity/takeover/bank-card";
    let (status, html) = get(&nb, app.url(path)).await;
    assert_eq!(status, 200, "{html}");
    let csrf = hidden(&html, "csrf").unwrap();
    let captcha_id = hidden(&html, "captcha_id").unwrap();
    let answer = sink(&app, "captcha", &captcha_id).await.unwrap();
    let card = [("name", "张三"), ("number", "110101199003074514"), ("card_number", CARD), ("bank_phone", BANK_PHONE)];
    let mut send =
        vec![("csrf", csrf.as_str()), ("captcha_id", &captcha_id), ("captcha", &answer), ("action", "send_code")];
    send.extend_from_slice(&card);
    let res = post(&nb, app.url(path), &send).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let code = six_digits(&sink(&app, "sms", BANK_PHONE).await.unwrap());
    let attempt = |sms: &str, over: &[(&'static str, &'static str)]| {
        let mut form: Vec<(&str, String)> =
            vec![("csrf", csrf.clone()), ("action", "takeover".into()), ("sms_code", sms.into())];
        for (k, v) in card.iter().filter(|(k, _)| !over.iter().any(|(o, _)| o == k)).chain(over.iter()) {
            form.push((k, v.to_string()));
        }
        let (b, url) = (&nb, app.url(path));
        async move {
            let res = b.http.post(url).form(&form).send().await.unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        }
    };
    // Someone else's document: refused before any code or check.
    let (status, body) = attempt("000000", &[("number", "11010519491231002X"), ("name", "李秀")]).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains(&app.state.pages.text("zh-CN", "identity_card_not_yours")), "{body}");
    // A wrong code to the bank's phone: nothing checked, nothing moved.
    let (status, body) = attempt("000000", &[]).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains(&app.state.pages.text("zh-CN", "sms_code_wrong")), "{body}");
    let held = identity::Entity::find()
        .filter(identity::Column::DocNumber.eq("110101199003074514"))
        .all(&app.state.store)
        .await
        .unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].user_id, old);
    // The right code and the four elements: the identity moves at L3.
    let (status, body) = attempt(&code, &[]).await;
    assert_eq!(status, 200, "{body}");
    let held = identity::Entity::find()
        .filter(identity::Column::DocNumber.eq("110101199003074514"))
        .all(&app.state.store)
        .await
        .unwrap();
    assert_eq!((held.len(), held[0].user_id.as_str(), held[0].level), (1, new.as_str(), 3));
    assert_eq!(idp::domain::assurance::proofing_level(&app.state.store, &new).await.unwrap(), 3);
    assert_eq!(idp::domain::assurance::proofing_level(&app.state.store, &old).await.unwrap(), 1);
    // Same effects as the face takeover: the person's sub moves, the old
    // account is told and signed out, and it is audited.
    use idp::domain::tokens::subjects;
    assert_eq!(subjects::of_account(&app.state.store, &new).await.unwrap(), old);
    assert!(sink(&app, "sms", "13600000031").await.unwrap().contains("换绑到其他账号"));
    assert_eq!(ob.http.get(app.url("/account")).send().await.unwrap().status(), 303);
    let taken = audit::Entity::find()
        .filter(audit::Column::Action.eq("identity_taken_over"))
        .count(&app.state.store)
        .await
        .unwrap();
    assert_eq!(taken, 1);
    // Done once: no takeover is pending any more.
    let (status, _) = attempt(&code, &[]).await;
    assert_eq!(status, 400);
}
both!(takeover_by_bank_card_four_elements, super::bank_card_takeover);

// ------------------------------------------------------------ health code

/// Posts the kin form; returns the status and the page (or the redirect).
async fn kin_post(app: &TestApp, b: &Browser, fields: &[(&str, &str)]) -> (u16, String) {
    let html = b.http.get(app.url("/account/kin")).send().await.unwrap().text().await.unwrap();
    let csrf = hidden(&html, "csrf").unwrap();
    let mut form = fields.to_vec();
    form.push(("csrf", &csrf));
    let r = b.http.post(app.url("/account/kin")).form(&form).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Binds a child aged 0–6 (no face check) as a relative of `b`'s account.
async fn bind_child(app: &TestApp, b: &Browser, name: &str, id: &str) {
    let mut form = vec![("action", "bind"), ("name", name), ("id_number", id), ("relation", "other")];
    let card = crate::face_gates::kin_card(app, id);
    form.extend(card.iter().map(|(k, v)| (*k, v.as_str())));
    let (status, page) = kin_post(app, b, &form).await;
    assert_eq!(status, 200, "{page}");
    let r = crate::face_gates::accept_kin_commitment(app, b, &page).await;
    assert_eq!(r.status(), 200, "bound without a face check at 5");
}

async fn lab_results_for_a_relative_and_the_access_log(backend: Backend) {
    use crate::health_code::{BASE, app_with as source, citizen as resident, page, signed_in};
    use crate::plugin_kit::{HEALTH, permit, spawn_plugins, tokens_for};
    let today = idp::domain::delegation::today(idp::clock::Clock::default().now());
    let born = today.checked_sub_months(chrono::Months::new(12 * 5)).unwrap().format("%Y%m%d").to_string();
    let child = crate::delegation::id_born(&born, 15);
    let known = child.clone();
    let app = spawn_plugins(backend, &[HEALTH], move |c, plugins| {
        // The authority knows the child (every kin binding is checked).
        let mut text = idp::ports::verifier::sandbox::BUILTIN_FIXTURE.to_string();
        text.push_str(&format!(
            "\n[[identities]]\nname = \"小明\"\ndoc_type = \"resident_id\"\nnumber = \"{known}\"\nid = \"pass\"\nface = \"pass\"\n"
        ));
        let path = plugins.parent().unwrap().join("kin-identities.toml");
        std::fs::write(&path, text).unwrap();
        c.verifier.fixture = Some(path);
    })
    .await;
    resident(&app, "hc_guardian", "李四", &crate::delegation::id_born("19800101", 1)).await;
    let b = signed_in(&app, "hc_guardian").await;
    bind_child(&app, &b, "小明", &child).await;
    // A lab pushes the child's result.
    let (_, lab) = source(&app, "health_code.lab").await;
    let r = api().post(app.url(&format!("{BASE}/api/lab-results"))).bearer_auth(&lab);
    let r = r.json(&serde_json::json!({ "id_number": child, "result": "negative", "lab": "西安市检测中心" }));
    assert_eq!(r.send().await.unwrap().status(), 201);

    // The guardian queries the relative's results (核酸检测结果查询).
    let (status, html) = page(&b, &app, "/").await;
    assert_eq!(status, 200, "{html}");
    let rid = html.split("?for=").nth(1).unwrap().split('"').next().unwrap().to_string();
    let (status, html) = page(&b, &app, "/tests").await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"lab-query\"") && html.contains(&format!("value=\"{rid}\"")), "{html}");
    let (status, html) = page(&b, &app, &format!("/tests?for={rid}")).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("data-result=\"negative\"") && html.contains("西安市检测中心"), "{html}");
    let (status, html) = page(&b, &app, &format!("/?for={rid}")).await;
    assert_eq!(status, 200, "the kinship code: {html}");
    // Anyone else: refused, nothing shown.
    resident(&app, "hc_stranger", "赵六", &crate::delegation::id_born("19850505", 2)).await;
    let s = signed_in(&app, "hc_stranger").await;
    let (status, html) = page(&s, &app, &format!("/tests?for={rid}")).await;
    assert_eq!(status, 404);
    assert!(!html.contains("西安市检测中心"), "{html}");

    // An app the guardian authorised fetches his code.
    let code_app = app.confidential().await;
    permit(&app, &code_app, "health_code").await;
    let (tok, _) = tokens_for(&app, &code_app, "hc_guardian", "openid health_code").await;
    let at = tok["access_token"].as_str().unwrap().to_string();
    let r = api().get(app.url(&format!("{BASE}/api/code"))).bearer_auth(&at).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // 授权办事: the guardian reads who obtained his code, what and when.
    let (status, html) = page(&b, &app, "/authorisations").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains(&format!("data-who-kind=\"app\" data-who=\"{}\" data-what=\"code\"", code_app.id)), "{html}");
    // The person reads the app's display name, never its client id (issue 20).
    let shown = app.state.clients.find(&code_app.id).await.unwrap().unwrap().name;
    assert!(html.contains(&format!("「{shown}」")), "{html}");
    assert!(!html.contains(&format!("「{}」", code_app.id)), "{html}");
    assert!(!html.contains("data-who-kind=\"kin\""), "{html}");
    // The child's own log names the guardian (masked) reading the results.
    resident(&app, "hc_child", "小明", &child).await;
    let c = signed_in(&app, "hc_child").await;
    let (status, html) = page(&c, &app, "/authorisations").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("data-who-kind=\"kin\" data-who=\"李*\" data-what=\"lab\""), "{html}");
    assert!(html.contains("data-who-kind=\"kin\" data-who=\"李*\" data-what=\"code\""), "{html}");
    assert!(!html.contains(&code_app.id), "the guardian's app never read the child's code: {html}");
}
both!(lab_results_of_a_relative_and_the_authorisation_log, super::lab_results_for_a_relative_and_the_access_log);
