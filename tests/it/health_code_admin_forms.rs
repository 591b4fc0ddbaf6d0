//! The health-code plugin's admin forms inside the operator console (issue
//! 15; E5, seed 003 §2.2.3 and §2.2.4.2): a platform admin adds, edits and
//! deletes code styles and edits and resets categories by form with the
//! console session; a refused form says what to fix, keeps what was typed
//! and changes nothing; the operation log names the staff member; the JSON
//! API with the shared admin token answers as before (and is logged as the
//! token); a POST without the CSRF token and an auditor are refused.
use crate::both;
use crate::console::{console, csrf_of, staff_account};
use crate::factors::{get, post};
use crate::health_code::{BASE, admin_get, admin_post, between};
use crate::plugin_kit::*;
use crate::support::*;
use idp::domain::staff::Role;
use serde_json::{Value, json};

/// A text of the plugin's Chinese locale (the console's default language).
fn text(key: &str) -> String {
    let texts: Value = serde_json::from_str(include_str!("../../plugins/health-code/locales/zh-CN.json")).unwrap();
    texts[key].as_str().unwrap_or_else(|| panic!("no text {key}")).to_string()
}

/// A form of owned values as the pairs `post` takes.
fn fields<'a>(form: &'a [(&'a str, String)]) -> Vec<(&'a str, &'a str)> {
    form.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn url(app: &TestApp, path: &str) -> String {
    app.url(&format!("{BASE}{path}"))
}

/// Posts a console form; asserts the redirect back to `page?done=<done>`.
async fn sent(app: &TestApp, b: &Browser, path: &str, form: &[(&str, &str)], back: &str) {
    let res = post(b, url(app, path), form).await;
    assert_eq!(res.status(), 303, "{path}: {}", res.text().await.unwrap());
    let to = location(&res).unwrap();
    assert!(to.ends_with(&format!("{BASE}{back}")), "{to}");
}

async fn styles(app: &TestApp) -> Vec<Value> {
    admin_get(app, "/admin/styles.json").await["styles"].as_array().unwrap().clone()
}

async fn category(app: &TestApp, code_type: &str) -> Value {
    let all = admin_get(app, "/admin/categories.json").await;
    all["categories"].as_array().unwrap().iter().find(|c| c["code_type"] == code_type).unwrap().clone()
}

/// Operators of the logged operations named `name`.
async fn operators(app: &TestApp, name: &str) -> Vec<String> {
    let ops = admin_get(app, "/admin/logs.json?kind=operation").await;
    let events = ops["events"].as_array().unwrap().iter().filter(|e| e["code_type"] == name);
    events.map(|e| e["app"].as_str().unwrap().to_string()).collect()
}

async fn styles_by_form(backend: Backend) {
    let app = spawn_plugins(backend, &[HEALTH], |_, _| {}).await;
    let (_, secret) = staff_account(&app, "hc_admin", "13700000051", Role::PlatformAdmin, &[]).await;
    let b = console(&app, "hc_admin", &secret).await;

    // The page opens in the console: the add form, no style yet.
    let (status, html) = get(&b, url(&app, "/admin/styles")).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("id=\"style-add\"") && html.contains("id=\"styles-empty\""), "{html}");
    let csrf = hidden(&html, "csrf").unwrap();

    // Add: the new style is listed as the active one, and the JSON says so.
    let add = [("csrf", csrf.as_str()), ("code_type", "personal"), ("background", "#e8f5e9"), ("colour", "#222222")];
    sent(&app, &b, "/admin/styles", &[&add[..], &[("icon", "⛑")]].concat(), "/admin/styles?done=added").await;
    let list = styles(&app).await;
    assert_eq!(list.len(), 1, "{list:?}");
    let id = list[0]["id"].as_str().unwrap().to_string();
    assert_eq!((list[0]["background"].as_str(), list[0]["active"].clone()), (Some("#e8f5e9"), json!(true)));
    let (status, html) = get(&b, url(&app, "/admin/styles?done=added")).await;
    assert_eq!(status, 200);
    assert!(html.contains(&format!("id=\"done\">{}</p>", text("style_done_added"))), "{html}");
    assert!(html.contains(&format!("<tr data-style=\"{id}\" data-active=\"true\">")), "{html}");
    assert!(html.contains(&format!("id=\"style-edit-{id}\"")) && html.contains(&format!("id=\"style-delete-{id}\"")));
    assert!(!html.contains("id=\"styles-empty\""));

    // Edit: a new look, still the active style.
    let edit = |bg: &str, colour: &str| {
        [
            ("csrf", csrf.clone()),
            ("id", id.clone()),
            ("code_type", "personal".to_string()),
            ("background", bg.to_string()),
            ("colour", colour.to_string()),
            ("icon", String::new()),
        ]
    };
    sent(&app, &b, "/admin/styles/edit", &fields(&edit("#fafafa", "#333333")), "/admin/styles?done=edited").await;
    let list = styles(&app).await;
    assert_eq!((list[0]["background"].as_str(), list[0]["colour"].as_str()), (Some("#fafafa"), Some("#333333")));
    assert_eq!((list[0]["icon"].as_str(), list[0]["active"].clone()), (Some(""), json!(true)));

    // A bad colour: the page again (400) naming the colour, what was typed
    // kept in that style's form, nothing changed.
    let res = post(&b, url(&app, "/admin/styles/edit"), &fields(&edit("#abcdef", "red"))).await;
    assert_eq!(res.status(), 400);
    let html = res.text().await.unwrap();
    assert!(html.contains(&format!("id=\"form-error\">{}</p>", text("style_bad_colour"))), "{html}");
    let row = between(&html, &format!("id=\"style-edit-{id}\""), "</form>");
    assert!(row.contains("name=\"colour\" value=\"red\" aria-invalid=\"true\""), "{row}");
    assert!(row.contains("name=\"background\" value=\"#abcdef\">"), "{row}");
    assert_eq!(styles(&app).await, list, "nothing changed");
    // The add form too: the typed values and the chosen type come back.
    let bad = [("csrf", csrf.as_str()), ("code_type", "enterprise"), ("background", "white"), ("colour", "#000000")];
    let res = post(&b, url(&app, "/admin/styles"), &bad).await;
    assert_eq!(res.status(), 400);
    let html = res.text().await.unwrap();
    assert!(html.contains(&text("style_bad_background")), "{html}");
    let add_form = between(&html, "id=\"style-add\"", "</form>");
    assert!(add_form.contains("<option value=\"enterprise\" selected>"), "{add_form}");
    assert!(add_form.contains("name=\"background\" value=\"white\" aria-invalid=\"true\""), "{add_form}");
    assert_eq!(styles(&app).await, list, "nothing added");

    // The operation log names the staff member, on the page and in JSON.
    assert_eq!(operators(&app, "style_set").await, ["staff:hc_admin"]);
    assert_eq!(operators(&app, "style_edit").await, ["staff:hc_admin"]);
    let (status, html) = get(&b, url(&app, "/admin/logs?kind=operation")).await;
    assert_eq!(status, 200);
    assert!(html.contains("<td>staff:hc_admin</td>"), "{html}");

    // The JSON API with the shared token answers exactly as before and is
    // logged as the token.
    let r =
        admin_post(&app, "/admin/styles/edit", json!({ "id": id, "code_type": "personal", "background": "red" })).await;
    assert_eq!(r.status(), 400);
    let description = "background and colour are #rrggbb; icon at most 8 characters";
    assert_eq!(json(r).await, json!({ "error": "invalid_request", "error_description": description }));
    let r = admin_post(&app, "/admin/styles", json!({ "code_type": "nope" })).await;
    assert_eq!(r.status(), 400);
    let description = "code_type must be one of [\"personal\", \"kin\", \"enterprise\"]";
    assert_eq!(json(r).await, json!({ "error": "invalid_request", "error_description": description }));
    let style = json!({ "code_type": "enterprise", "background": "#eef4ff", "colour": "#000000", "icon": "企" });
    let r = admin_post(&app, "/admin/styles", style).await;
    assert_eq!(r.status(), 201);
    let created = json(r).await;
    let mut keys: Vec<&String> = created.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["active", "background", "code_type", "colour", "created_at", "icon", "id"], "{created}");
    assert_eq!((created["active"].clone(), created["icon"].clone()), (json!(true), json!("企")));
    assert_eq!(operators(&app, "style_set").await, ["admin-token", "staff:hc_admin"], "newest first");
    let gone = json!({ "code_type": "personal", "id": "nope" });
    let r = admin_post(&app, "/admin/styles/delete", gone.clone()).await;
    assert_eq!(r.status(), 404);
    assert_eq!(json(r).await, json!({ "error": "not_found" }));
    let r = admin_post(
        &app,
        "/admin/styles/edit",
        json!({ "id": "nope", "code_type": "personal", "background": "#ffffff", "colour": "#000000" }),
    )
    .await;
    assert_eq!(r.status(), 404);

    // Without the CSRF token: refused, nothing deleted.
    let res = post(&b, url(&app, "/admin/styles/delete"), &[("code_type", "personal"), ("id", &id)]).await;
    assert_eq!(res.status(), 403);
    assert_eq!(styles(&app).await.len(), 2);

    // Delete by form: gone from the list and the JSON; again, a 404 page
    // saying so.
    let del = [("csrf", csrf.as_str()), ("code_type", "personal"), ("id", id.as_str())];
    sent(&app, &b, "/admin/styles/delete", &del, "/admin/styles?done=deleted").await;
    let list = styles(&app).await;
    assert!(list.len() == 1 && list[0]["code_type"] == "enterprise", "{list:?}");
    let (_, html) = get(&b, url(&app, "/admin/styles?done=deleted")).await;
    assert!(html.contains(&text("style_done_deleted")) && !html.contains(&format!("data-style=\"{id}\"")), "{html}");
    let res = post(&b, url(&app, "/admin/styles/delete"), &del).await;
    assert_eq!(res.status(), 404);
    assert!(res.text().await.unwrap().contains(&text("style_gone")));
    assert_eq!(operators(&app, "style_delete").await, ["staff:hc_admin"]);

    // An auditor opens no plugin admin page and changes nothing.
    let (_, secret) = staff_account(&app, "hc_auditor", "13700000052", Role::Auditor, &[]).await;
    let aud = console(&app, "hc_auditor", &secret).await;
    assert_eq!(get(&aud, url(&app, "/admin/styles")).await.0, 403);
    let their_csrf = csrf_of(&app, &aud, "/admin/step-up").await;
    let add = [("csrf", their_csrf.as_str()), ("code_type", "kin"), ("background", "#ffffff"), ("colour", "#000000")];
    assert_eq!(post(&aud, url(&app, "/admin/styles"), &add).await.status(), 403);
    assert_eq!(styles(&app).await, list);
}
both!(health_code_admin_style_forms, super::styles_by_form);

async fn categories_by_form(backend: Backend) {
    let app = spawn_plugins(backend, &[HEALTH], |_, _| {}).await;
    let (_, secret) = staff_account(&app, "hc_admin", "13700000053", Role::PlatformAdmin, &[]).await;
    let b = console(&app, "hc_admin", &secret).await;

    // Every code type with its built-in category and an edit form.
    let (status, html) = get(&b, url(&app, "/admin/categories")).await;
    assert_eq!(status, 200, "{html}");
    for t in ["personal", "kin", "enterprise"] {
        assert!(html.contains(&format!("<tr data-category=\"{t}\" data-customised=\"false\">")), "{t}: {html}");
        assert!(html.contains(&format!("id=\"category-edit-{t}\"")));
        assert!(!html.contains(&format!("id=\"category-reset-{t}\"")), "nothing to reset");
    }
    let csrf = hidden(&html, "csrf").unwrap();

    // Edit: saved, listed as customised with a reset button.
    let form = |prefix: &str, digits: &str| {
        [
            ("csrf", csrf.clone()),
            ("code_type", "personal".to_string()),
            ("name", "个人健康码".to_string()),
            ("prefix", prefix.to_string()),
            ("digits", digits.to_string()),
        ]
    };
    sent(&app, &b, "/admin/categories", &fields(&form("XZ", "6")), "/admin/categories?done=saved").await;
    let saved = json!({ "code_type": "personal", "name": "个人健康码", "prefix": "XZ", "digits": 6 });
    assert_eq!(category(&app, "personal").await, saved);
    let (_, html) = get(&b, url(&app, "/admin/categories?done=saved")).await;
    assert!(html.contains(&text("category_done_saved")), "{html}");
    assert!(html.contains("<tr data-category=\"personal\" data-customised=\"true\">"), "{html}");
    assert!(html.contains("id=\"category-reset-personal\"") && !html.contains("id=\"category-reset-kin\""));

    // A bad prefix and bad digits: the page again naming the field, the
    // typed values kept, nothing changed.
    let res = post(&b, url(&app, "/admin/categories"), &fields(&form("X-Y!", "6"))).await;
    assert_eq!(res.status(), 400);
    let html = res.text().await.unwrap();
    assert!(html.contains(&format!("id=\"form-error\">{}</p>", text("category_bad_prefix"))), "{html}");
    let row = between(&html, "id=\"category-edit-personal\"", "</form>");
    assert!(row.contains("name=\"prefix\" value=\"X-Y!\" aria-invalid=\"true\""), "{row}");
    let res = post(&b, url(&app, "/admin/categories"), &fields(&form("AB", "3"))).await;
    assert_eq!(res.status(), 400);
    let html = res.text().await.unwrap();
    assert!(html.contains(&text("category_bad_digits")), "{html}");
    let row = between(&html, "id=\"category-edit-personal\"", "</form>");
    assert!(row.contains("name=\"digits\" value=\"3\" aria-invalid=\"true\"") && row.contains("value=\"AB\""), "{row}");
    assert_eq!(category(&app, "personal").await, saved, "nothing changed");

    // The JSON API with the shared token, exactly as before.
    let r = admin_post(
        &app,
        "/admin/categories",
        json!({ "code_type": "kin", "name": "亲属码", "prefix": "QS", "digits": 20 }),
    )
    .await;
    assert_eq!(r.status(), 400);
    let description = "code_type, name (≤40), prefix (1-6 letters/digits) and digits (4-16) are required";
    assert_eq!(json(r).await, json!({ "error": "invalid_request", "error_description": description }));
    let r = admin_post(
        &app,
        "/admin/categories",
        json!({ "code_type": "kin", "name": "亲属码", "prefix": "QS", "digits": "6" }),
    )
    .await;
    assert_eq!(r.status(), 400);
    let answer = json(r).await;
    assert!(answer["error_description"].as_str().unwrap().starts_with("invalid type"), "{answer}");
    let kin = json!({ "code_type": "kin", "name": "亲属码", "prefix": "QS", "digits": 6 });
    let r = admin_post(&app, "/admin/categories", kin.clone()).await;
    assert_eq!(r.status(), 201);
    assert_eq!(json(r).await, kin);
    assert_eq!(operators(&app, "category_set").await, ["admin-token", "staff:hc_admin"]);

    // Without the CSRF token: refused, nothing reset.
    let res = post(&b, url(&app, "/admin/categories/delete"), &[("code_type", "personal")]).await;
    assert_eq!(res.status(), 403);
    assert_eq!(category(&app, "personal").await, saved);

    // Reset by form: the built-in numbering again; a second reset is a
    // 404 page saying it is built-in already.
    let reset = [("csrf", csrf.as_str()), ("code_type", "personal")];
    sent(&app, &b, "/admin/categories/delete", &reset, "/admin/categories?done=reset").await;
    assert_eq!(category(&app, "personal").await["prefix"], "GR");
    let (_, html) = get(&b, url(&app, "/admin/categories?done=reset")).await;
    assert!(html.contains(&text("category_done_reset")), "{html}");
    assert!(html.contains("<tr data-category=\"personal\" data-customised=\"false\">"), "{html}");
    let res = post(&b, url(&app, "/admin/categories/delete"), &reset).await;
    assert_eq!(res.status(), 404);
    assert!(res.text().await.unwrap().contains(&text("category_not_customised")));
    assert_eq!(operators(&app, "category_delete").await, ["staff:hc_admin"]);
    let r = admin_post(&app, "/admin/categories/delete", json!({ "code_type": "kin" })).await;
    assert_eq!((r.status().as_u16(), json(r).await), (200, json!({ "deleted": true })));
    assert_eq!(operators(&app, "category_delete").await, ["admin-token", "staff:hc_admin"]);

    // An auditor: no categories page, no change.
    let (_, secret) = staff_account(&app, "hc_auditor", "13700000054", Role::Auditor, &[]).await;
    let aud = console(&app, "hc_auditor", &secret).await;
    assert_eq!(get(&aud, url(&app, "/admin/categories")).await.0, 403);
    let their_csrf = csrf_of(&app, &aud, "/admin/step-up").await;
    let f =
        [("csrf", their_csrf.as_str()), ("code_type", "personal"), ("name", "x"), ("prefix", "AA"), ("digits", "6")];
    assert_eq!(post(&aud, url(&app, "/admin/categories"), &f).await.status(), 403);
    assert_eq!(category(&app, "personal").await["prefix"], "GR");
}
both!(health_code_admin_category_forms, super::categories_by_form);
