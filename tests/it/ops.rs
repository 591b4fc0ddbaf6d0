//! Operating the provider: the CLI, configuration errors, key rotation,
//! two nodes on one PostgreSQL, storage failures, headers and templates.
use crate::both;
use crate::support::*;
use std::process::Command;

pub(crate) fn idp_cmd(dir: &std::path::Path, db: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_idp"));
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("IDP_DATA_DIR", dir)
        .env("IDP_DATABASE_URL", db)
        .env("IDP_MASTER_KEY", "7f".repeat(32))
        .env("IDP_LOG", "warn");
    c
}

async fn cli(b: Backend) {
    let app = spawn(b).await;
    let out = idp_cmd(&app.dir, &app.database_url)
        .args(["client", "create", "--name", "CLI RP", "--redirect-uri", "https://rp.example.org/cb", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = created["client_id"].as_str().unwrap();
    assert!(created["client_secret"].as_str().unwrap().len() >= 43, "high-entropy secret");
    // The running server sees it at once (shared database).
    let found = app.state.clients.find(id).await.unwrap().unwrap();
    assert_eq!(found.redirect_uris, vec!["https://rp.example.org/cb"]);
    let bad = idp_cmd(&app.dir, &app.database_url)
        .args(["client", "create", "--name", "x", "--redirect-uri", "http://evil.example/cb"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("loopback"));
    let out = idp_cmd(&app.dir, &app.database_url)
        .args(["user", "create", "--username", "cli_user1", "--phone", "13912345678", "--json"])
        .env("IDP_NEW_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let user: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(user["username"], "cli_user1");
    // Signs in by phone number (A3).
    let client = app.confidential().await;
    let end = Browser::new().run(&app, &auth_url(&app, &client, &[]), "13912345678", PASSWORD).await;
    let t = json(redeem(&app, &client, &end.code(), None).await).await;
    assert_eq!(jwt_claims(t["id_token"].as_str().unwrap())["sub"], user["sub"]);
    let out = idp_cmd(&app.dir, &app.database_url).args(["client", "list", "--json"]).output().unwrap();
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(list.as_array().unwrap().iter().any(|c| c["client_id"] == id));
    let out = idp_cmd(&app.dir, &app.database_url).args(["client", "delete", id]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(app.state.clients.find(id).await.unwrap().is_none());
}
both!(cli_creates_clients_and_users, super::cli);

#[test]
fn config_errors_name_the_key() {
    let dir = temp_dir();
    let out = idp_cmd(&dir, "sqlite::memory:").arg("check-config").env("IDP_LISTN", "x").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("listn") && err.contains("listen"), "{err}");
    let out = idp_cmd(&dir, "mysql://x").arg("check-config").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("database_url"));
    let file = dir.join("idp.toml");
    std::fs::write(&file, "issuer = \"https://id.example.org\"\n[tokens]\naccess_token_ttl = \"soon\"\n").unwrap();
    let out =
        idp_cmd(&dir, "sqlite::memory:").args(["--config", file.to_str().unwrap(), "check-config"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("tokens.access_token_ttl"));
}

async fn rotation(b: Backend) {
    let app = spawn(b).await;
    let client = app.confidential().await;
    app.user("rotate_u1").await;
    let (code, _) = sign_in(&app, &client, "rotate_u1", &[]).await;
    let t = json(redeem(&app, &client, &code, None).await).await;
    let old_kid = {
        let header = t["id_token"].as_str().unwrap().split('.').next().unwrap();
        let h: serde_json::Value = serde_json::from_slice(&idp::crypto::b64url_decode(header).unwrap()).unwrap();
        h["kid"].as_str().unwrap().to_string()
    };
    let out = idp_cmd(&app.dir, &app.database_url).args(["keys", "rotate", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    app.state.keys.reload(&app.state.store, app.state.config.tokens.retired_key_publish).await.unwrap();
    let jwks = json(api().get(app.url("/jwks")).send().await.unwrap()).await;
    let kids: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert!(kids.contains(&old_kid.as_str()), "retired key still published");
    // Token keys (ES256, RS256, PS256) and the plugin key (ES256), each old and new.
    assert_eq!(kids.len(), 8);
    assert_eq!(kids.iter().filter(|k| k.starts_with("plugin-")).count(), 2, "the plugin key rotates too: {kids:?}");
    // Old-key access token still accepted; new tokens use the new key.
    let info = api().get(app.url("/userinfo")).bearer_auth(t["access_token"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(info.status(), 200);
    let (code, _) = sign_in(&app, &client, "rotate_u1", &[]).await;
    let t2 = json(redeem(&app, &client, &code, None).await).await;
    let header = t2["id_token"].as_str().unwrap().split('.').next().unwrap();
    let h: serde_json::Value = serde_json::from_slice(&idp::crypto::b64url_decode(header).unwrap()).unwrap();
    assert_ne!(h["kid"], old_kid);
}
both!(key_rotation_keeps_old_tokens_valid, super::rotation);

async fn storage_failure_is_503(b: Backend) {
    let app = spawn(b).await;
    let client = app.confidential().await;
    use sea_orm::ConnectionTrait;
    app.state.store.execute_unprepared("DROP TABLE revoked_tokens").await.unwrap();
    let cc = json(
        api()
            .post(app.url("/token"))
            .basic_auth(&client.id, client.secret.as_ref())
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    let at = cc["access_token"].as_str().unwrap();
    let res = api()
        .post(app.url("/revoke"))
        .basic_auth(&client.id, client.secret.as_ref())
        .form(&[("token", at)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503, "a failed revocation is never reported as success");
    assert_eq!(json(res).await["error"], "temporarily_unavailable");
    let res = api()
        .post(app.url("/introspect"))
        .basic_auth(&client.id, client.secret.as_ref())
        .form(&[("token", at)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    // A client never seen by this node (so not in the registration cache).
    let unseen = app.confidential().await;
    app.state.store.execute_unprepared("DROP TABLE clients").await.unwrap();
    let res = api()
        .post(app.url("/token"))
        .basic_auth(&unseen.id, unseen.secret.as_ref())
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
}
both!(storage_failures_answer_503, super::storage_failure_is_503);

async fn headers_and_pages(b: Backend) {
    let app = spawn(b).await;
    let res = api().get(app.url("/")).send().await.unwrap();
    assert_eq!(res.headers()["x-frame-options"], "DENY");
    assert!(res.headers()["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
    let d = json(api().get(app.url("/.well-known/openid-configuration")).send().await.unwrap()).await;
    assert_eq!(d["issuer"], app.base);
    for ep in [
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "end_session_endpoint",
        "revocation_endpoint",
        "introspection_endpoint",
    ] {
        assert!(d[ep].as_str().unwrap().starts_with(&app.base), "{ep}");
    }
    assert_eq!(d["code_challenge_methods_supported"], serde_json::json!(["S256"]));
    assert_eq!(d["response_types_supported"], serde_json::json!(["code"]));
    // Every template renders in every locale.
    for name in app.state.pages.template_names() {
        for lang in &app.state.config.i18n.locales {
            let html =
                app.state.pages.render(name, lang, sample_context()).unwrap_or_else(|e| panic!("{name} {lang}: {e:?}"));
            assert!(html.contains(&format!("lang=\"{lang}\"")), "{name}");
        }
    }
    // Locale files define the same keys.
    let zh: toml::Table = toml::from_str(include_str!("../../themes/default/locales/zh-CN.toml")).unwrap();
    let en: toml::Table = toml::from_str(include_str!("../../themes/default/locales/en.toml")).unwrap();
    let mut a: Vec<_> = zh.keys().collect();
    let mut b: Vec<_> = en.keys().collect();
    a.sort();
    b.sort();
    assert_eq!(a, b);
}
both!(security_headers_discovery_and_templates, super::headers_and_pages);

/// Two `idp serve` processes on one PostgreSQL: any node finishes any flow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_one_postgres() {
    let Some(Backend::Postgres(admin)) = Backend::postgres() else { return };
    let db = fresh_postgres(&admin).await;
    let dir = temp_dir();
    let mut nodes = Vec::new();
    let mut bases = Vec::new();
    for _ in 0..2 {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        // Both nodes share one issuer, as behind a load balancer.
        let child = idp_cmd(&dir, &db)
            .arg("serve")
            .env("IDP_LISTEN", format!("127.0.0.1:{port}"))
            .env("IDP_ISSUER", "http://127.0.0.1:1")
            .spawn()
            .unwrap();
        nodes.push(KillOnDrop(child));
        bases.push(format!("http://127.0.0.1:{port}"));
        // Let the first node migrate before the second starts.
        wait_ready(bases.last().unwrap()).await;
    }
    // A test app on the same database gives us users/clients.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut config = config_for(&Backend::Sqlite, 1, &dir).await;
    config.database_url = Some(db.clone());
    config.issuer = "http://127.0.0.1:1".into();
    let admin_app = spawn_with(config, listener, dir.clone()).await;
    let client = admin_app.confidential().await;
    admin_app.user("node_user1").await;
    // Sign in on node A (rewrite the shared issuer to node A's address).
    let a =
        TestApp { base: bases[0].clone(), state: admin_app.state.clone(), dir: dir.clone(), database_url: db.clone() };
    let bnode =
        TestApp { base: bases[1].clone(), state: admin_app.state.clone(), dir: dir.clone(), database_url: db.clone() };
    let browser = Browser::new();
    let mut url = auth_url(&a, &client, &[]);
    let code = loop {
        let res = browser.http.get(&url).send().await.unwrap();
        if let Some(next) = location(&res) {
            if next.starts_with(&client.redirect_uri) {
                break query_of(&next)["code"].clone();
            }
            url = next.replace("http://127.0.0.1:1", &bases[0]);
            continue;
        }
        let path = url::Url::parse(&url).unwrap().path().to_string();
        let html = res.text().await.unwrap();
        let mut form = vec![("req", hidden(&html, "req").unwrap()), ("csrf", hidden(&html, "csrf").unwrap())];
        if path == "/login" {
            form.push(("username", "node_user1".into()));
            form.push(("password", PASSWORD.into()));
        } else {
            form.push(("decision", "allow".into()));
        }
        let res = browser.http.post(a.url(&path)).form(&form).send().await.unwrap();
        url = location(&res).unwrap().replace("http://127.0.0.1:1", &bases[0]);
    };
    // Redeem and refresh on node B.
    let t = json(redeem(&bnode, &client, &code, None).await).await;
    assert!(t["access_token"].is_string(), "{t}");
    let r = json(crate::tokens::refresh(&bnode, &client, t["refresh_token"].as_str().unwrap()).await).await;
    assert!(r["access_token"].is_string(), "{r}");
    // The access token from node B works at node A's userinfo.
    let info = api().get(a.url("/userinfo")).bearer_auth(r["access_token"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(info.status(), 200);
    // Log out on node B: the refresh token dies on node A too.
    let mut u = url::Url::parse(&bnode.url("/logout")).unwrap();
    u.query_pairs_mut().append_pair("id_token_hint", r["id_token"].as_str().unwrap());
    let res = browser.http.get(u.as_str()).send().await.unwrap();
    assert_eq!(res.status(), 200, "logged-out page");
    let res = crate::tokens::refresh(&a, &client, r["refresh_token"].as_str().unwrap()).await;
    assert_eq!(json(res).await["error"], "invalid_grant");
}

pub(crate) struct KillOnDrop(pub std::process::Child);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) async fn wait_ready(base: &str) {
    for _ in 0..200 {
        if let Ok(r) = api().get(format!("{base}/health")).send().await
            && r.status() == 200
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{base} did not start");
}

/// Every variable any page uses, so a template referring to something no
/// handler provides fails here rather than in front of a citizen.
pub fn sample_context() -> tera::Context {
    let mut ctx = tera::Context::new();
    for key in [
        "req",
        "csrf",
        "username",
        "client_name",
        "message",
        "claims",
        "userinfo",
        "id_token",
        "issuer",
        "client_id",
        "state",
        "post_logout_redirect_uri",
        "phone",
        "captcha_id",
        "captcha_image",
        "info",
        "flow",
        "account",
        "account_masked",
        "phone_masked",
        "username_masked",
        "email",
        "name",
        "nickname",
        "gender",
        "ethnicity",
        "new_phone",
        "ticket",
        "upstream_name",
    ] {
        ctx.insert(key, "x");
    }
    ctx.insert("error", &Option::<String>::None);
    ctx.insert("scopes", &vec!["openid"]);
    ctx.insert("claims", &Vec::<String>::new());
    ctx.insert("demo", &true);
    ctx.insert("agree", &false);
    ctx.insert("step", &2);
    ctx.insert(
        "scan",
        &serde_json::json!({ "ticket": "x", "url": "x", "svg": "<svg></svg>", "expires_in": 120, "phase": "pending",
            "message": "x", "retry": "/login/scan",
            "msgs": { "pending": "x", "scanned": "x", "confirmed": "x", "denied": "x", "expired": "x", "used": "x" } }),
    );
    ctx.insert("view", "password");
    ctx.insert("ethnic_groups", &["汉族"]);
    ctx.insert("filed", &Option::<String>::None);
    ctx.insert("f", &serde_json::json!({"kind": "phone", "claimed_value": "", "name": "", "id_number": "", "details": "", "phone": ""}));
    ctx.insert("id_masked", &Some("****0013"));
    ctx.insert("need_captcha", &true);
    ctx.insert("upstreams", &vec![serde_json::json!({"name": "gov", "label": "使用国家平台登录"})]);
    ctx.insert("upstream_links", &vec![serde_json::json!({"id": "l1", "label": "国家平台"})]);
    // Strong factors (security.html, mfa_*.html, login.html).
    ctx.insert("passkeys_available", &true);
    ctx.insert("has_phone", &true);
    ctx.insert("has_factor", &true);
    ctx.insert("totp", &serde_json::json!({"created": "2026-11-26 10:00 UTC", "last_used": null}));
    ctx.insert(
        "passkeys",
        &vec![serde_json::json!({"id": "p1", "name": "手机", "created": "2026-11-26 10:00 UTC", "last_used": null})],
    );
    ctx.insert("recovery_left", &10);
    ctx.insert("totp_secret", "JBSWY3DPEHPK3PXP");
    ctx.insert("totp_qr", "data:image/svg+xml;base64,");
    ctx.insert("codes", &vec!["abcde-fghjk"]);
    ctx.insert("current_level", "2");
    ctx.insert("target_level", "3");
    ctx.insert(
        "proofing_ways",
        &vec![serde_json::json!({"label": "step_up_way_face", "href": "/identity/face?req=x"})],
    );
    ctx.insert("factor_ways", &vec![serde_json::json!({"label": "step_up_way_totp", "href": "/mfa/totp?req=x"})]);
    ctx.insert("can_skip", &true);
    // Portal (issue 19): two-step sign-in, my apps, devices, history.
    ctx.insert("second_step_on", &true);
    ctx.insert("codes_text", "abcde-fghjk");
    ctx.insert("codes_href", "data:text/plain;charset=utf-8,abcde-fghjk");
    ctx.insert("apps", &vec![serde_json::json!({"client_id": "c", "name": "x", "releases": ["x"], "granted": "x"})]);
    ctx.insert("devices", &vec![serde_json::json!({"n": 1, "sid": "s", "current": true, "remember": false, "signed_in": "x", "last_seen": "x"})]);
    ctx.insert("others", &false);
    ctx.insert(
        "entries",
        &vec![serde_json::json!({"action": "sign_in", "what": "x", "method": "x", "at": "x", "ip": "x"})],
    );
    ctx.insert("kind", "sms");
    ctx.insert("verify_href", "/identity/verify?req=x");
    // Legal persons and delegation pages share one view model `v`.
    let row = serde_json::json!({"id": "d1", "name": "张*", "other": "李*", "id_masked": "****0013", "state": "pending",
        "state_text": "待审核", "reason": "x", "modified": "2026-11-26 10:00:00", "scopes": "openid",
        "valid_from": "2026-11-26", "valid_to": "2026-11-27", "relation": "子女", "can_unbind": true});
    ctx.insert(
        "v",
        &serde_json::json!({"req": "x", "uscc": "91440300708461136T", "role": "agent", "agent": "x", "error": "x",
            "step": "form", "doc_types": [{"value": "resident_id", "key": "doc_resident_id"}],
            "info": "x", "gate": "g", "purpose": "enterprise_login", "confirmed": false, "id_masked": "****0013",
            "detail": {"action": "enterprise_login", "enterprise": {"name": "x", "uscc": "x"}, "person": "****0013"},
            "enterprise": {"name": "x", "uscc": "x"}, "agents": [row.clone()], "granted": [row.clone()],
            "received": [row.clone()], "relatives": [row], "today": "2026-11-26", "kind": "phone", "filed": "x",
            "done": false, "captcha_id": "x", "captcha_image": "x", "phone": "x",
            "f": {"region": "x", "uscc": "x", "name": "x", "id_number": "x", "id_valid_from": "", "id_valid_to": "",
                "gender": "male", "ethnicity": "x", "phone": "x", "rep_name": "x", "rep_id_number": "x", "rep_phone": "x", "rep_doc_type": "resident_id", "rep_number": "x"}}),
    );
    ctx.insert(
        "help",
        &serde_json::json!({"q": "x", "kind": "error", "body": "x", "page": "/account", "error": "x", "error_key": "x",
            "searched": true, "sent": false,
            "sections": [{"category": {"id": "c1", "name": "x"}, "items": [{"id": "i1", "question": "x", "answer": "x"}]}],
            "rows": [{"id": "f1", "status": "answered", "kind_text": "x", "at": "x", "page": "/", "body": "x",
                "answer": "x", "answered_at": "x"}]}),
    );
    ctx.insert("skip_href", "/account");
    identity_context(&mut ctx);
    ctx
}

/// The real-name pages' variables (`identity.html`, every view).
pub fn identity_context(ctx: &mut tera::Context) {
    ctx.insert(
        "identity",
        &serde_json::json!({"doc_label": "中国居民身份证", "name_masked": "*秀", "number_masked": "1*************002X",
            "valid_from": "2010-01-01", "valid_to": "长期", "level": 3, "method": "人脸识别"}),
    );
    ctx.insert("level", &3);
    ctx.insert("result_level", &3);
    ctx.insert("takeover", &true);
    ctx.insert("face_required", &true);
    ctx.insert("operator", &true);
    ctx.insert("doc_types", &vec![serde_json::json!({"value": "resident_id", "label": "中国居民身份证"})]);
    ctx.insert("doc", &serde_json::json!({"doc_type": "resident_id", "name": "", "number": "", "long_term": true}));
}

/// Graceful shutdown: on the signal the listener closes, a browser waiting
/// on the scan event stream sees its stream end (it would otherwise hold the
/// drain open), and the serve loop returns well within the grace period.
async fn graceful_shutdown(b: Backend) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = temp_dir();
    let mut config = config_for(&b, port, &dir).await;
    config.shutdown_grace_secs = 30;
    let database_url = config.database_url();
    let state = idp::build_state(config, true).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(idp::serve_until(state.clone(), listener, async move {
        let _ = stopped.await;
    }));
    let app = TestApp { base: state.config.issuer.clone(), state, dir, database_url };
    let rp = app.confidential().await;
    let waiting = crate::scan::open_scan_tab_in(&app, &rp, Browser::new()).await;
    let mut events =
        waiting.browser.http.get(app.url(&format!("/scan/events?t={}", waiting.ticket))).send().await.unwrap();
    assert_eq!(events.status(), 200);
    let first = tokio::time::timeout(std::time::Duration::from_secs(10), events.chunk()).await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first.unwrap()).contains("pending"));

    let asked = std::time::Instant::now();
    stop.send(()).unwrap();
    // The stream ends (not after the 30 s grace, at once).
    let end = async { while let Ok(Some(_)) = events.chunk().await {} };
    tokio::time::timeout(std::time::Duration::from_secs(10), end).await.expect("event stream closed on shutdown");
    let served = tokio::time::timeout(std::time::Duration::from_secs(10), server).await.expect("serve returned");
    served.unwrap().unwrap();
    assert!(asked.elapsed() < std::time::Duration::from_secs(10));
    // Nothing listens any more, and the pool is closed.
    assert!(api().get(app.url("/healthz")).send().await.is_err(), "listener closed");
    assert!(app.state.store.ping().await.is_err(), "database pool closed");
}
both!(graceful_shutdown_closes_streams_and_pool, super::graceful_shutdown);

/// Waits (polling, bounded) until a freshly started `idp serve` answers.
async fn wait_up(base: &str, child: &mut std::process::Child) {
    for _ in 0..300 {
        if let Ok(res) = api().get(format!("{base}/healthz")).send().await
            && res.status() == 200
        {
            return;
        }
        assert!(child.try_wait().unwrap().is_none(), "idp serve exited early");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("idp serve never came up");
}

/// The binary: `log_format = "json"` writes one JSON object per line, each
/// request's lines carry its id (the caller's `X-Request-Id` when well
/// formed, else a fresh one, echoed in the response), the route template
/// and never the query or path secrets; SIGTERM stops it cleanly.
#[tokio::test]
async fn json_logs_request_ids_and_sigterm() {
    let dir = temp_dir();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    let db = format!("sqlite://{}?mode=rwc", dir.join("idp.db").display());
    let mut child = idp_cmd(&dir, &db)
        .arg("serve")
        .env("IDP_ISSUER", &base)
        .env("IDP_LISTEN", format!("127.0.0.1:{port}"))
        .env("IDP_LOG_FORMAT", "json")
        .env("IDP_LOG", "info,idp::access=debug,sqlx=warn,sea_orm=warn")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_up(&base, &mut child).await;

    let res = api().get(format!("{base}/healthz")).header("x-request-id", "lb-7f3a.42").send().await.unwrap();
    assert_eq!(res.headers()["x-request-id"], "lb-7f3a.42", "a well-formed caller id is kept");
    let res = api().get(format!("{base}/healthz")).send().await.unwrap();
    let fresh = res.headers()["x-request-id"].to_str().unwrap().to_string();
    assert!(fresh.len() == 32 && fresh.bytes().all(|b| b.is_ascii_hexdigit()), "{fresh}");
    let res = api().get(format!("{base}/healthz")).header("x-request-id", "a\"b c").send().await.unwrap();
    let replaced = res.headers()["x-request-id"].to_str().unwrap().to_string();
    assert!(replaced.len() == 32 && replaced != fresh, "an unsafe caller id is replaced");
    // A request carrying secrets in its path and query.
    let secret = "SECRETcodeVALUE0123456789";
    let res = api()
        .get(format!("{base}/scan/t/{secret}?code={secret}&access_token={secret}"))
        .header("x-request-id", "req-with-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "req-with-secret");

    let started = std::time::Instant::now();
    let kill = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await.unwrap().unwrap();
    assert!(out.status.success(), "clean exit on SIGTERM: {:?}", out.status);
    assert!(started.elapsed() < std::time::Duration::from_secs(15));

    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!text.contains(secret), "no secret from a path or query is logged:\n{text}");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let access =
        |id: &str| lines.iter().find(|l| l["target"] == "idp::access" && l["span"]["request_id"] == id).cloned();
    let kept = access("lb-7f3a.42").expect("access line with the caller's id");
    assert_eq!(kept["span"]["route"], "/healthz");
    assert_eq!(kept["span"]["method"], "GET");
    assert_eq!(kept["status"], 200);
    assert!(access(&fresh).is_some() && access(&replaced).is_some());
    let scan = access("req-with-secret").expect("access line of the request with secrets");
    assert_eq!(scan["span"]["route"], "/scan/t/{id}");
    assert!(lines.iter().any(|l| l["fields"]["message"].as_str().is_some_and(|m| m.contains("shutting down"))
        || l["message"].as_str().is_some_and(|m| m.contains("shutting down"))));
}

/// Expired rows go in bounded batches (each its own short statement), all
/// of them in the end, and nothing that is still live.
async fn purge_in_batches(b: Backend) {
    use sea_orm::ConnectionTrait;
    let app = spawn(b).await;
    // Purged "an hour from now", so the server's own upkeep (which purges
    // at the real now) cannot take any of these rows first.
    let now = app.state.clock.now() + 3600;
    for i in 0..250 {
        assert!(idp::store::record_once(&app.state.store, &format!("old-{i}"), now - 600).await.unwrap());
    }
    for i in 0..7 {
        assert!(idp::store::record_once(&app.state.store, &format!("live-{i}"), now + 3600).await.unwrap());
    }
    let count = |like: &'static str| {
        let db = app.state.store.clone();
        async move {
            let sql = format!("SELECT COUNT(*) AS n FROM used_jtis WHERE key LIKE '{like}%'");
            let row = db
                .query_one_raw(sea_orm::Statement::from_string(db.get_database_backend(), sql))
                .await
                .unwrap()
                .unwrap();
            row.try_get::<i64>("", "n").unwrap()
        }
    };
    let purged = idp::store::purge_expired_in_batches(&app.state.store, now, 40).await.unwrap();
    assert_eq!(purged, 250, "all of ours, in 7 batches of at most 40");
    assert_eq!(count("old-").await, 0);
    assert_eq!(count("live-").await, 7);
    // Nothing left to do: a second pass deletes nothing of ours.
    idp::store::purge_expired(&app.state.store, now).await.unwrap();
    assert_eq!(count("live-").await, 7);

    // A session's (session, app) pairs for logout go with the session, not
    // before it and never left behind.
    use idp::store::entities::{session, session_client};
    use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};
    let db = &app.state.store;
    for (sid, expires_at) in [("sid-old", now - 2 * 86400), ("sid-live", now + 3600)] {
        session::ActiveModel {
            id_hash: Set(format!("hash-{sid}")),
            sid: Set(sid.into()),
            user_id: Set("nobody".into()),
            auth_time: Set(now - 3 * 86400),
            created_at: Set(now - 3 * 86400),
            last_seen: Set(now - 3 * 86400),
            expires_at: Set(expires_at),
            revoked: Set(false),
            remember: Set(false),
            factors: Set("[]".into()),
        }
        .insert(db)
        .await
        .unwrap();
        for client in ["rp-a", "rp-b"] {
            session_client::ActiveModel {
                id: Set(format!("{sid}-{client}")),
                sid: Set(sid.into()),
                client_id: Set(client.into()),
            }
            .insert(db)
            .await
            .unwrap();
        }
    }
    let pairs =
        |sid: &'static str| session_client::Entity::find().filter(session_client::Column::Sid.eq(sid)).count(db);
    idp::store::purge_expired_in_batches(db, now, 1).await.unwrap();
    assert_eq!(pairs("sid-old").await.unwrap(), 0, "the expired session's pairs went with it");
    assert_eq!(pairs("sid-live").await.unwrap(), 2, "a live session keeps its pairs");
    assert_eq!(session::Entity::find().filter(session::Column::Sid.eq("sid-old")).count(db).await.unwrap(), 0);
    assert_eq!(session::Entity::find().filter(session::Column::Sid.eq("sid-live")).count(db).await.unwrap(), 1);
}
both!(purge_removes_expired_rows_in_batches, super::purge_in_batches);

/// Expired device-grant (RFC 8628) and CIBA requests go with the purge,
/// an hour after they expire (a late poll still hears `expired_token`);
/// live ones stay.
async fn purge_device_and_ciba(b: Backend) {
    use idp::store::entities::{ciba_request, device_code};
    use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};
    let app = spawn(b).await;
    // As in the batch test: "an hour from now", out of the upkeep's reach.
    let now = app.state.clock.now() + 3600;
    let device = |id: &str, expires_at: i64| device_code::ActiveModel {
        device_code_hash: Set(format!("purge-{id}")),
        user_code: Set(format!("PURGE{id}")),
        client_id: Set("rp".into()),
        scope: Set("openid".into()),
        state: Set("pending".into()),
        user_id: Set(None),
        sid: Set(None),
        auth_time: Set(None),
        acr: Set(None),
        amr: Set(None),
        interval_secs: Set(5),
        last_poll_at: Set(None),
        created_at: Set(expires_at - 600),
        expires_at: Set(expires_at),
    };
    let ciba = |id: &str, expires_at: i64| ciba_request::ActiveModel {
        auth_req_hash: Set(format!("purge-{id}")),
        ticket_id: Set(format!("purge-ticket-{id}")),
        client_id: Set("rp".into()),
        user_id: Set("u".into()),
        scope: Set("openid".into()),
        mode: Set("poll".into()),
        notification_endpoint: Set(None),
        ping_sealed: Set(None),
        interval_secs: Set(5),
        last_poll_at: Set(None),
        notified_at: Set(None),
        created_at: Set(expires_at - 600),
        expires_at: Set(expires_at),
    };
    let db = &app.state.store;
    // Expired two hours ago; expired a minute ago (still kept); live.
    for (id, at) in [("old", now - 7200), ("recent", now - 60), ("live", now + 600)] {
        device(id, at).insert(db).await.unwrap();
        ciba(id, at).insert(db).await.unwrap();
    }
    idp::store::purge_expired(db, now).await.unwrap();
    let devices = |id: &'static str| {
        device_code::Entity::find().filter(device_code::Column::DeviceCodeHash.eq(format!("purge-{id}"))).count(db)
    };
    let cibas = |id: &'static str| {
        ciba_request::Entity::find().filter(ciba_request::Column::AuthReqHash.eq(format!("purge-{id}"))).count(db)
    };
    assert_eq!(devices("old").await.unwrap(), 0);
    assert_eq!(cibas("old").await.unwrap(), 0);
    for id in ["recent", "live"] {
        assert_eq!(devices(id).await.unwrap(), 1, "device {id}");
        assert_eq!(cibas(id).await.unwrap(), 1, "ciba {id}");
    }
}
both!(purge_removes_expired_device_and_ciba_requests, super::purge_device_and_ciba);
