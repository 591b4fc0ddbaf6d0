//! Health-code administration gaps (E5, E6; 003 §2.2.3, §2.2.4.2): styles
//! and categories can be added, viewed, edited and deleted, and the
//! community list is maintained by the administrator.
use crate::both;
use crate::health_code::{BASE, ZHANG_ID, admin_get, admin_post, citizen, page, signed_in};
use crate::plugin_kit::*;
use crate::support::*;
use serde_json::{Value, json};

async fn administration(backend: Backend) {
    let app = spawn_plugins(backend, &[HEALTH], |_, _| {}).await;
    citizen(&app, "zhang_san", "张三", ZHANG_ID).await;
    let b = signed_in(&app, "zhang_san").await;

    // Styles: add two, edit the older (stays inactive), delete the active one.
    let style = |bg: &str| json!({ "code_type": "personal", "background": bg, "colour": "#222222", "icon": "⛑" });
    let first =
        json(admin_post(&app, "/admin/styles", style("#ffffff")).await).await["id"].as_str().unwrap().to_string();
    let second =
        json(admin_post(&app, "/admin/styles", style("#e8f5e9")).await).await["id"].as_str().unwrap().to_string();
    let mut edit = style("#fafafa");
    edit["id"] = Value::from(first.as_str());
    let r = admin_post(&app, "/admin/styles/edit", edit.clone()).await;
    assert_eq!(r.status(), 200);
    let edited = json(r).await;
    assert_eq!((edited["background"].clone(), edited["active"].clone()), (json!("#fafafa"), json!(false)), "{edited}");
    let mut bad = edit.clone();
    bad["colour"] = Value::from("red");
    assert_eq!(admin_post(&app, "/admin/styles/edit", bad).await.status(), 400);
    edit["id"] = Value::from("nope");
    assert_eq!(admin_post(&app, "/admin/styles/edit", edit).await.status(), 404);
    let del = json!({ "code_type": "personal", "id": second });
    assert_eq!(admin_post(&app, "/admin/styles/delete", del.clone()).await.status(), 200);
    assert_eq!(admin_post(&app, "/admin/styles/delete", del).await.status(), 404);
    let list = admin_get(&app, "/admin/styles.json").await;
    let styles = list["styles"].as_array().unwrap();
    assert_eq!(styles.len(), 1, "{list}");
    assert_eq!((styles[0]["id"].as_str(), styles[0]["active"].clone()), (Some(first.as_str()), json!(false)));
    assert_eq!(page(&b, &app, "/").await.0, 200, "the built-in look is shown again");

    // Categories: set, view, delete (back to the built-in numbering).
    let cat = json!({ "code_type": "personal", "name": "个人码", "prefix": "XZ", "digits": 6 });
    assert_eq!(admin_post(&app, "/admin/categories", cat).await.status(), 201);
    let cats = admin_get(&app, "/admin/categories.json").await;
    assert!(cats["categories"].as_array().unwrap().iter().any(|c| c["prefix"] == "XZ"), "{cats}");
    let del = json!({ "code_type": "personal" });
    assert_eq!(admin_post(&app, "/admin/categories/delete", del.clone()).await.status(), 200);
    assert_eq!(admin_post(&app, "/admin/categories/delete", del).await.status(), 404);
    let cats = admin_get(&app, "/admin/categories.json").await;
    assert!(cats["categories"].as_array().unwrap().iter().all(|c| c["prefix"] != "XZ"), "{cats}");

    // Communities: the administrator adds one and removes another; the
    // citizen's search follows.
    let r = admin_post(&app, "/admin/communities", json!({ "add": ["青松小区"], "remove": ["阳光花园"] })).await;
    assert_eq!(r.status(), 200);
    let list = admin_get(&app, "/admin/communities.json").await;
    let names: Vec<&str> = list["communities"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    assert!(names.contains(&"青松小区") && !names.contains(&"阳光花园"), "{names:?}");
    let (_, html) = page(&b, &app, "/profile?q=%E9%9D%92%E6%9D%BE").await;
    assert!(html.contains("<option value=\"青松小区\""), "{html}");
    let (_, html) = page(&b, &app, "/profile?q=%E9%98%B3%E5%85%89%E5%9B%AD").await;
    assert!(!html.contains("<option value=\"阳光花园\""), "{html}");
    assert_eq!(admin_post(&app, "/admin/communities", json!({ "add": [""] })).await.status(), 400);
    let r =
        api().post(app.url(&format!("{BASE}/admin/communities"))).json(&json!({ "add": ["x"] })).send().await.unwrap();
    assert_eq!(r.status(), 401);
}
both!(health_code_styles_categories_communities_editable, super::administration);
