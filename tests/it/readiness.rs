//! `/healthz` (alive) and `/readyz` (able to serve: database, keys,
//! plugins). Readiness fails while the database is down and comes back by
//! itself after, with no restart.
use crate::both;
use crate::support::*;
use sea_orm::ConnectionTrait;

async fn get(app: &TestApp, path: &str) -> (u16, serde_json::Value) {
    let res = api().get(app.url(path)).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or_default())
}

/// Polls `/readyz` until it answers `want`, for at most about 20 s.
async fn readiness_becomes(app: &TestApp, want: u16) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    for _ in 0..100 {
        let (status, body) = get(app, "/readyz").await;
        if status == want {
            return body;
        }
        last = body;
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    panic!("/readyz never answered {want}: {last}");
}

async fn readiness(backend: Backend) {
    let app = spawn(backend.clone()).await;
    let (status, body) = get(&app, "/healthz").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("alive")));
    let (status, body) = get(&app, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ready");
    for check in ["database", "keys", "plugins"] {
        assert_eq!(body["checks"][check], "ok", "{check}: {body}");
    }
    // The database goes away: PostgreSQL refuses new connections to this
    // database and ends the open ones.
    let Backend::Postgres(admin_url) = backend else { return };
    let name = app.database_url.rsplit('/').next().unwrap().to_string();
    let admin = sea_orm::Database::connect(admin_url.as_str()).await.unwrap();
    admin.execute_unprepared(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false")).await.unwrap();
    admin
        .execute_unprepared(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        ))
        .await
        .unwrap();
    let body = readiness_becomes(&app, 503).await;
    assert_eq!(body["status"], "not_ready");
    assert_ne!(body["checks"]["database"], "ok", "{body}");
    // Still alive: a restart would not help, so liveness does not ask for one.
    assert_eq!(get(&app, "/healthz").await.0, 200);
    // The database is back: readiness recovers by itself.
    admin.execute_unprepared(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true")).await.unwrap();
    let body = readiness_becomes(&app, 200).await;
    assert_eq!(body["checks"]["database"], "ok");
    // And the node serves again: a discovery document and a token.
    let client = app.confidential().await;
    let res = api()
        .post(app.url("/token"))
        .basic_auth(&client.id, client.secret.as_deref())
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}
both!(readiness_follows_the_database, super::readiness);

/// `/metrics` speaks the Prometheus text format and counts what happened.
/// The counters are per process and tests run side by side, so the test
/// asserts on what it did itself being counted, not on exact totals.
async fn metrics(backend: Backend) {
    let sqlite = matches!(backend, Backend::Sqlite);
    let app = spawn(backend).await;
    let client = app.confidential().await;
    // A password sign-in that succeeds (L1: one factor, not verified) and
    // one that fails, counted by the core wherever they came from.
    app.user("metricsuser").await;
    sign_in(&app, &client, "metricsuser", &[]).await;
    let end = Browser::new().run(&app, &auth_url(&app, &client, &[]), "metricsuser", "not-the-password").await;
    assert!(matches!(end, End::Page(..)), "a wrong password reached the client");
    for _ in 0..2 {
        let res = api()
            .post(app.url("/token"))
            .basic_auth(&client.id, client.secret.as_deref())
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    let res = api().post(app.url("/token")).form(&[("grant_type", "client_credentials")]).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let res = api().get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let text = res.text().await.unwrap();
    let value = |series: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series).map(|v| v.trim().parse::<u64>().unwrap()))
            .unwrap_or_else(|| panic!("{series} missing from:\n{text}"))
    };
    assert!(value("idp_tokens_total{grant_type=\"client_credentials\",outcome=\"issued\"}") >= 2);
    assert!(value("idp_tokens_total{grant_type=\"client_credentials\",outcome=\"refused\"}") >= 1);
    assert!(value("idp_http_requests_total{route=\"/token\",method=\"POST\",status=\"2xx\"}") >= 2);
    assert!(value("idp_http_requests_total{route=\"/token\",method=\"POST\",status=\"4xx\"}") >= 1);
    assert!(text.contains("# TYPE idp_http_request_duration_seconds histogram"));
    assert!(value("idp_http_request_duration_seconds_count{route=\"/token\",method=\"POST\"}") >= 3);
    let sign_ins = "idp_sign_ins_total{method=\"password\",level=";
    assert!(value(&format!("{sign_ins}\"L1\",outcome=\"success\"}}")) >= 1);
    assert!(value(&format!("{sign_ins}\"none\",outcome=\"failed\"}}")) >= 1);
    // The pool, and on SQLite the writer thread that committed the writes.
    let backend = if sqlite { "sqlite" } else { "postgres" };
    let max = value(&format!("idp_db_max_connections{{backend=\"{backend}\"}}"));
    let open = value(&format!("idp_db_connections{{backend=\"{backend}\",state=\"busy\"}}"))
        + value(&format!("idp_db_connections{{backend=\"{backend}\",state=\"idle\"}}"));
    assert!((1..=max).contains(&open), "{open} connections open of {max}");
    if sqlite {
        assert!(value("idp_sqlite_writes_total") >= 1);
        let commits = value("idp_sqlite_commits_total");
        assert!((1..=value("idp_sqlite_writes_total")).contains(&commits));
    } else {
        assert!(!text.contains("idp_sqlite_writes_total"), "PostgreSQL has no SQLite writer");
    }
    // Route templates, never raw paths: bounded label values.
    assert!(!text.contains(&client.id), "a client id leaked into a label");
}
both!(metrics_count_requests_tokens_sign_ins_and_the_pool, super::metrics);
