//! Plugins loaded into the real server: claims only with consent
//! and permission, protected routes, containment of a faulty plugin, and
//! refusal of plugins that must not load.
use crate::both;
use crate::plugin_kit::*;
use crate::support::*;
use serde_json::Value;

async fn claims_need_permission_and_consent(b: Backend) {
    let app = spawn_plugins(b, &[EXAMPLE], |_, _| {}).await;
    app.user("zhao_liu").await;
    let permitted = app.confidential().await;
    let other = app.confidential().await;
    permit(&app, &permitted, "example").await;
    let d: Value = api().get(app.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert!(d["scopes_supported"].as_array().unwrap().contains(&Value::from("example")), "{d}");

    // The consent page lists the plugin scope in the user's language.
    let browser = Browser::new();
    let start = auth_url(&app, &permitted, &[("scope", "openid profile example")]);
    let (html, _) = until_consent(&app, &browser, &start, "zhao_liu").await;
    assert!(html.contains("示例插件的问候语"), "{html}");
    // Declining releases nothing.
    let denied = decide(&app, &browser, &html, "deny").await;
    assert_eq!(query_of(&denied).get("error").map(String::as_str), Some("access_denied"));

    // With consent and permission: in the token's scope, ID token, userinfo.
    let (tok, _) = tokens_for(&app, &permitted, "zhao_liu", "openid profile example").await;
    assert!(tok["scope"].as_str().unwrap().split(' ').any(|s| s == "example"), "{tok}");
    let id = jwt_claims(tok["id_token"].as_str().unwrap());
    assert_eq!(id["example_greeting"], "Hello, 王五", "{id}");
    let at = tok["access_token"].as_str().unwrap().to_string();
    let info: Value = userinfo(&app, &at).await.json().await.unwrap();
    assert_eq!(info["example_greeting"], "Hello, 王五", "{info}");

    // Without `profile` the plugin only learns the subject (scope-limited profile).
    let (tok2, _) = tokens_for(&app, &permitted, "zhao_liu", "openid example").await;
    let id2 = jwt_claims(tok2["id_token"].as_str().unwrap());
    assert_eq!(id2["example_greeting"], format!("Hello, {}", id2["sub"].as_str().unwrap()));

    // A client without permission: the scope is ignored, no claim.
    let (tok3, _) = tokens_for(&app, &other, "zhao_liu", "openid profile example").await;
    assert!(!tok3["scope"].as_str().unwrap().contains("example"), "{tok3}");
    assert!(jwt_claims(tok3["id_token"].as_str().unwrap()).get("example_greeting").is_none());
    let r = client_token(&app, &other, "example").await;
    assert_eq!(r.status(), 400);
    assert_eq!(json(r).await["error"], "invalid_scope");

    // Revoking the permission takes effect at once, on the same token.
    assert!(
        idp::domain::plugins::plugin_access::deny(&app.state.store, &permitted.id, "example", app.state.clock.now())
            .await
            .unwrap()
    );
    let info: Value = userinfo(&app, &at).await.json().await.unwrap();
    assert!(info.get("example_greeting").is_none(), "{info}");
    assert_eq!(info["preferred_username"], "zhao_liu");
    let r = api().get(app.url("/plugins/example/api/greeting")).bearer_auth(&at).send().await.unwrap();
    assert_eq!(r.status(), 403);

    // So does disabling the plugin: claims gone, routes gone.
    permit(&app, &permitted, "example").await;
    let info: Value = userinfo(&app, &at).await.json().await.unwrap();
    assert_eq!(info["example_greeting"], "Hello, 王五");
    idp::domain::plugins::plugin_access::set_enabled(&app.state.store, "example", false, app.state.clock.now())
        .await
        .unwrap();
    let info: Value = userinfo(&app, &at).await.json().await.unwrap();
    assert!(info.get("example_greeting").is_none(), "{info}");
    let r = api().get(app.url("/plugins/example/api/greeting")).bearer_auth(&at).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let (tok4, _) = tokens_for(&app, &permitted, "zhao_liu", "openid example").await;
    assert!(!tok4["scope"].as_str().unwrap().contains("example"), "{tok4}");
}
both!(plugin_claims_need_permission_and_consent, super::claims_need_permission_and_consent);

async fn routes_are_protected(b: Backend) {
    let app = spawn_plugins(b, &[EXAMPLE], |_, _| {}).await;
    app.user("zhao_liu").await;
    let client = app.confidential().await;
    permit(&app, &client, "example").await;

    // User page: needs the SSO session, then themed and backed by storage.
    // Without a session: off to sign in, and back here afterwards.
    let r = api().get(app.url("/plugins/example/hello")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r).unwrap(), app.url("/login"));
    let b = Browser::new();
    b.http.get(app.url("/plugins/example/hello")).send().await.unwrap();
    let html = b.http.get(app.url("/login")).send().await.unwrap().text().await.unwrap();
    let form = [
        ("csrf", hidden(&html, "csrf").unwrap()),
        ("username", "zhao_liu".to_string()),
        ("password", PASSWORD.to_string()),
    ];
    let r = b.http.post(app.url("/login")).form(&form).send().await.unwrap();
    assert_eq!(location(&r).unwrap(), app.url("/plugins/example/hello"), "returned to the plugin page");
    let (tok, browser) = tokens_for(&app, &client, "zhao_liu", "openid profile example").await;
    for _ in 0..2 {
        let r = browser.http.get(app.url("/plugins/example/hello")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let html = r.text().await.unwrap();
        assert!(html.contains("class=\"top\"") && html.contains("Hello, 王五"), "{html}");
    }
    let r = browser.http.post(app.url("/plugins/example/hello")).send().await.unwrap();
    assert_eq!(r.status(), 404, "undeclared method");
    let r = browser.http.get(app.url("/plugins/nope/hello")).send().await.unwrap();
    assert_eq!(r.status(), 404);

    // API: a token with the plugin's scope from a permitted client.
    let api_url = app.url("/plugins/example/api/greeting");
    assert_eq!(api().get(&api_url).send().await.unwrap().status(), 401);
    assert_eq!(api().get(&api_url).bearer_auth("not-a-token").send().await.unwrap().status(), 401);
    let (no_scope, _) = tokens_for(&app, &client, "zhao_liu", "openid profile").await;
    let r = api().get(&api_url).bearer_auth(no_scope["access_token"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().contains("insufficient_scope"));
    let r = api().get(&api_url).bearer_auth(tok["access_token"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body = json(r).await;
    assert_eq!(body["greeting"], "Hello, 王五");
    assert_eq!(body["client_id"], client.id.as_str());
    // An app's own token (client_credentials) with the permitted scope.
    let ct = json(client_token(&app, &client, "example").await).await;
    let r = api().get(&api_url).bearer_auth(ct["access_token"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(json(r).await["greeting"], "Hello, app");

    // Admin: only the configured admin token.
    let admin_url = app.url("/plugins/example/admin/visits");
    assert_eq!(api().get(&admin_url).send().await.unwrap().status(), 401);
    let r = api().get(&admin_url).bearer_auth(tok["access_token"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(r.status(), 401, "a user's token is not an admin token");
    let r = api().get(&admin_url).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(json(r).await["visits"], 2, "the visit counter lives in the provider's database");
}
both!(plugin_routes_are_protected, super::routes_are_protected);

async fn faulty_plugin_is_contained(b: Backend) {
    let app = spawn_plugins(b, &[EXAMPLE, PANICKY], |c, _| {
        c.plugins.call_timeout_ms = 500;
        c.plugins.unhealthy_after = 4;
    })
    .await;
    app.user("zhao_liu").await;
    let client = app.confidential().await;
    permit(&app, &client, "panicky").await;
    permit(&app, &client, "example").await;
    let browser = Browser::new();
    let end = browser.run(&app, &auth_url(&app, &client, &[("scope", "openid panicky")]), "zhao_liu", PASSWORD).await;

    // 1: a plugin slower than the limit → 503 on time, the server is not held.
    let started = std::time::Instant::now();
    let r = browser.http.get(app.url("/plugins/panicky/slow")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(started.elapsed() < std::time::Duration::from_millis(2500), "{:?}", started.elapsed());
    // 2: claims panic at the token endpoint → fail closed, no token.
    let r = redeem(&app, &client, &end.code(), None).await;
    assert_eq!(r.status(), 500);
    let body = json(r).await;
    assert_eq!(body["error"], "server_error", "{body}");
    assert!(body.get("access_token").is_none());
    // 3, 4: a panicking and an erroring route → 500 for that request only.
    let r = browser.http.get(app.url("/plugins/panicky/boom")).send().await.unwrap();
    assert_eq!(r.status(), 500);
    assert!(r.text().await.unwrap().contains("class=\"top\""), "a themed error page");
    assert_eq!(browser.http.get(app.url("/plugins/panicky/fail")).send().await.unwrap().status(), 500);

    // Now unhealthy: even a good route fails fast, and it shows.
    let r = browser.http.get(app.url("/plugins/panicky/ok")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let report = app.state.plugins.report().await.unwrap();
    let p = report.iter().find(|p| p.name == "panicky").unwrap();
    assert!(!p.healthy && p.faults == 4, "{p:?}");
    assert!(p.last_error.as_deref().unwrap_or("").contains("failed"), "{p:?}");
    let shared = idp::domain::plugins::plugin_access::state(&app.state.store, "panicky").await.unwrap();
    assert!(!shared.healthy, "recorded for `idp plugin list` and other nodes");
    assert!(report.iter().find(|p| p.name == "example").unwrap().healthy);

    // The server keeps serving: other plugins, sign-ins; the unhealthy
    // plugin's scope is simply not granted meanwhile.
    assert_eq!(api().get(app.url("/health")).send().await.unwrap().status(), 200);
    let r = browser.http.get(app.url("/plugins/example/hello")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let (tok, _) = tokens_for(&app, &client, "zhao_liu", "openid profile panicky example").await;
    let scope = tok["scope"].as_str().unwrap();
    assert!(scope.contains("example") && !scope.contains("panicky"), "{scope}");
}
both!(faulty_plugin_is_contained, super::faulty_plugin_is_contained);

async fn optional_plugin_fails_open(b: Backend) {
    let app = spawn_plugins(b, &[PANICKY], |c, _| c.plugins.optional = vec!["panicky".into()]).await;
    app.user("zhao_liu").await;
    let client = app.confidential().await;
    permit(&app, &client, "panicky").await;
    let (tok, _) = tokens_for(&app, &client, "zhao_liu", "openid panicky").await;
    let id = jwt_claims(tok["id_token"].as_str().unwrap());
    assert!(id.get("panicky_value").is_none());
    assert_eq!(userinfo(&app, tok["access_token"].as_str().unwrap()).await.status(), 200);
}
both!(optional_plugin_fails_open, super::optional_plugin_fails_open);

async fn bad_plugins_are_refused(b: Backend) {
    let app = spawn_plugins(b, &[EXAMPLE, BAD_ABI, COLLIDE_CORE, COLLIDE_PLUGIN], |c, dir| {
        install(dir, EXAMPLE, Some(&lib_file("idp_plugin_example_copy")));
        let open = install(dir, PANICKY, None);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o666)).unwrap();
        }
        install(dir, ECERT, None);
        c.plugins.sha256.insert(lib_file(ECERT), "0".repeat(64));
    })
    .await;
    let loaded: Vec<&str> = app.state.plugins.plugins().iter().map(|p| p.name()).collect();
    assert_eq!(loaded, vec!["example"]);
    let refused = app.state.plugins.refused();
    let reason =
        |file: &str| refused.iter().find(|r| r.file == lib_file(file)).map(|r| r.reason.clone()).unwrap_or_default();
    assert!(reason(BAD_ABI).contains("ABI version 999"), "{refused:?}");
    assert!(reason(COLLIDE_CORE).contains("scope `email` collides with a core scope"), "{refused:?}");
    assert!(reason(COLLIDE_PLUGIN).contains("scope `example` collides with plugin `example`"), "{refused:?}");
    assert!(reason("idp_plugin_example_copy").contains("duplicate plugin name `example`"), "{refused:?}");
    assert!(reason(PANICKY).contains("world-writable"), "{refused:?}");
    assert!(reason(ECERT).contains("does not match the pin"), "{refused:?}");
    assert_eq!(refused.len(), 6, "{refused:?}");
    // Refused plugins add nothing: their routes do not exist.
    assert_eq!(api().get(app.url("/plugins/panicky/ok")).send().await.unwrap().status(), 404);
}
both!(bad_plugins_are_refused_at_start, super::bad_plugins_are_refused);

/// `idp plugin list`, `idp client allow-scope|deny-scope`, `idp plugin
/// disable` against a running server's database and plugin folder.
async fn plugin_cli(b: Backend) {
    let app = spawn_plugins(b, &[EXAMPLE, BAD_ABI], |_, _| {}).await;
    app.user("zhao_liu").await;
    // Generated ids may start with `-`; the CLI must not take one for a flag.
    let client = app.client(|c| c.client_id = Some("-Vcli-client".into())).await;
    let plugin_dir = app.dir.join("plugins");
    let idp = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_idp"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("IDP_DATA_DIR", &app.dir)
            .env("IDP_DATABASE_URL", &app.database_url)
            .env("IDP_MASTER_KEY", "7f".repeat(32))
            .env("IDP_PLUGINS__DIR", &plugin_dir)
            .env("IDP_LOG", "off")
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = idp(&["plugin", "list", "--json"]);
    assert!(ok, "{err}");
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list["loaded"][0]["name"], "example", "{list}");
    assert_eq!(list["loaded"][0]["scopes"][0]["description"]["zh-CN"], "示例插件的问候语");
    assert!(list["refused"][0]["reason"].as_str().unwrap().contains("ABI version 999"), "{list}");
    let (_, text, _) = idp(&["plugin", "list"]);
    assert!(
        text.contains("loaded   example") && text.contains("refused  ") && text.contains("ABI version 999"),
        "{text}"
    );

    let (ok, _, err) = idp(&["client", "allow-scope", &client.id, "profile"]);
    assert!(!ok && err.contains("core scope"), "{err}");
    let (ok, _, err) = idp(&["client", "allow-scope", &client.id, "nonexistent"]);
    assert!(!ok && err.contains("no loaded plugin declares"), "{err}");
    let (ok, _, err) = idp(&["client", "allow-scope", &client.id, "example"]);
    assert!(ok, "{err}");
    let (tok, _) = tokens_for(&app, &client, "zhao_liu", "openid example").await;
    assert!(tok["scope"].as_str().unwrap().contains("example"));
    let at = tok["access_token"].as_str().unwrap().to_string();

    let (ok, _, err) = idp(&["plugin", "disable", "example"]);
    assert!(ok, "{err}");
    let (_, out, _) = idp(&["plugin", "list", "--json"]);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["loaded"][0]["enabled"], false);
    let info: Value = userinfo(&app, &at).await.json().await.unwrap();
    assert!(info.get("example_greeting").is_none(), "disabled by another process, seen at once");
    idp(&["plugin", "enable", "example"]);
    let (ok, _, err) = idp(&["client", "deny-scope", &client.id, "example"]);
    assert!(ok, "{err}");
    let info: Value = userinfo(&app, &at).await.json().await.unwrap();
    assert!(info.get("example_greeting").is_none(), "{info}");
    let (ok, _, _) = idp(&["client", "deny-scope", &client.id, "example"]);
    assert!(!ok, "nothing left to deny");
}
both!(plugin_cli_lists_and_administers, super::plugin_cli);

/// Issue 17: a pairwise app's plugin claims and plugin API answers name
/// the person by the `sub` that app knows (its ID token's), never the
/// public one another app could join on.
async fn pairwise_plugin_claims(b: Backend) {
    let app = spawn_plugins(b, &[EXAMPLE], |_, _| {}).await;
    let public = app.user("pw_plugin").await;
    let rp = app.client(|c| c.subject_type = Some("pairwise".into())).await;
    permit(&app, &rp, "example").await;
    let (tok, _) = tokens_for(&app, &rp, "pw_plugin", "openid example").await;
    let id = jwt_claims(tok["id_token"].as_str().unwrap());
    let sub = id["sub"].as_str().unwrap().to_string();
    assert_ne!(sub, public, "a pairwise client never sees the public sub");
    assert_eq!(id["example_greeting"], format!("Hello, {sub}"), "{id}");
    let at = tok["access_token"].as_str().unwrap().to_string();
    let info: Value = userinfo(&app, &at).await.json().await.unwrap();
    assert_eq!(info["sub"], sub.as_str());
    assert_eq!(info["example_greeting"], format!("Hello, {sub}"), "{info}");
    let r = api().get(app.url("/plugins/example/api/greeting")).bearer_auth(&at).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["greeting"], format!("Hello, {sub}"), "{body}");
    // A public client still gets the public sub, in the ID token and the claim.
    let plain = app.confidential().await;
    permit(&app, &plain, "example").await;
    let (tok, _) = tokens_for(&app, &plain, "pw_plugin", "openid example").await;
    let id = jwt_claims(tok["id_token"].as_str().unwrap());
    assert_eq!(id["sub"], public.as_str());
    assert_eq!(id["example_greeting"], format!("Hello, {public}"));
}
both!(pairwise_plugin_claims_use_the_apps_sub, super::pairwise_plugin_claims);
