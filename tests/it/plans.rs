//! Query plans on the hot paths (issue 16): with tens of thousands of
//! accounts, sessions, grants and refresh tokens seeded (`idp dev seed`'s
//! core function) and the planner's statistics fresh, a password sign-in
//! (by username and by phone), the code redemption, userinfo, refresh and
//! introspection read those tables through indexes only: PostgreSQL's own
//! counters show no sequential scan of them. A scan here would grow with
//! the number of accounts; an index lookup stays flat.
use crate::support::*;
use sea_orm::{ConnectionTrait, Statement};
use std::time::{Duration, Instant};

/// Waits until the database has no client connections left but the bus
/// listeners (which read no table).
async fn connections_gone(admin_url: &str, name: &str) {
    let admin = sea_orm::Database::connect(admin_url).await.unwrap();
    let started = Instant::now();
    loop {
        let row = admin
            .query_one_raw(Statement::from_sql_and_values(
                sea_orm::DbBackend::Postgres,
                "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND query NOT ILIKE 'LISTEN%'",
                [name.into()],
            ))
            .await
            .unwrap()
            .unwrap();
        if row.try_get::<i64>("", "n").unwrap() == 0 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "the node's connections did not end");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    admin.close().await.ok();
}

/// Another node on the same database (already migrated).
async fn second_node(first: &TestApp) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let dir = temp_dir();
    let env = vec![
        ("IDP_ISSUER".to_string(), format!("http://{addr}")),
        ("IDP_LISTEN".to_string(), addr.to_string()),
        ("IDP_DATA_DIR".to_string(), dir.display().to_string()),
        ("IDP_DATABASE_URL".to_string(), first.database_url.clone()),
        ("IDP_MASTER_KEY".to_string(), "7f".repeat(32)),
    ];
    let config = idp::config::Config::load_from(None, &env).unwrap();
    spawn_with(config, listener, dir).await
}

const HOT_TABLES: [&str; 4] = ["users", "sessions", "grants", "refresh_tokens"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_paths_use_indexes_only() {
    let Some(backend) = Backend::postgres() else { return };
    let Backend::Postgres(admin_url) = backend.clone() else { return };
    let app = spawn(backend).await;
    let rp = app.confidential().await;
    let hash = app.state.passwords.hash(PASSWORD.into()).await.unwrap();
    let seed = idp::store::seed::Seed {
        accounts: 30_000,
        client_id: &rp.id,
        password_hash: &hash,
        now: app.state.clock.now(),
    };
    idp::store::seed::seed(&app.state.store, &seed).await.unwrap();
    idp::store::seed::analyze(&app.state.store).await.unwrap();
    let counts = idp::store::seed::seed(&app.state.store, &seed).await.unwrap();
    assert_eq!(counts, 30_000, "seeding again adds nothing");

    // A backend reports its counters when it ends (PostgreSQL keeps them
    // pending for a while otherwise): the seeding node's connections end
    // before the counters are reset, and a fresh node on the same database
    // serves the flows.
    let name = app.database_url.rsplit('/').next().unwrap().to_string();
    app.state.store.clone().close().await.unwrap();
    connections_gone(&admin_url, &name).await;
    let db = sea_orm::Database::connect(app.database_url.as_str()).await.unwrap();
    db.execute_unprepared("SELECT pg_stat_reset()").await.unwrap();
    db.close().await.ok();
    let app = second_node(&app).await;

    for user in ["seed12345", "13900023456"] {
        let (code, _) = sign_in(&app, &rp, user, &[]).await;
        let res = redeem(&app, &rp, &code, None).await;
        assert_eq!(res.status(), 200);
        let tokens = json(res).await;
        let access = tokens["access_token"].as_str().unwrap();
        let res = api().get(app.url("/userinfo")).bearer_auth(access).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let res = api()
            .post(app.url("/introspect"))
            .basic_auth(&rp.id, rp.secret.as_deref())
            .form(&[("token", access)])
            .send()
            .await
            .unwrap();
        assert_eq!(json(res).await["active"], true);
        let refresh = tokens["refresh_token"].as_str().unwrap();
        let res = api()
            .post(app.url("/token"))
            .basic_auth(&rp.id, rp.secret.as_deref())
            .form(&[("grant_type", "refresh_token"), ("refresh_token", refresh)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }

    app.state.store.clone().close().await.unwrap();
    connections_gone(&admin_url, &name).await;

    let db = sea_orm::Database::connect(app.database_url.as_str()).await.unwrap();
    let rows = db
        .query_all_raw(Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT relname::text AS t, seq_scan, COALESCE(idx_scan, 0) AS idx_scan FROM pg_stat_user_tables",
        ))
        .await
        .unwrap();
    let mut seen = 0;
    for r in rows {
        let table: String = r.try_get("", "t").unwrap();
        if !HOT_TABLES.contains(&table.as_str()) {
            continue;
        }
        seen += 1;
        let seq: i64 = r.try_get("", "seq_scan").unwrap();
        let idx: i64 = r.try_get("", "idx_scan").unwrap();
        assert_eq!(seq, 0, "{table}: {seq} sequential scans on a hot path ({idx} index scans)");
        assert!(idx > 0, "{table}: the flows read it by index");
    }
    assert_eq!(seen, HOT_TABLES.len());
    db.close().await.ok();
}

/// The seeded accounts are real accounts on both databases: one signs in
/// with the shared password, and its seeded refresh token is on record.
async fn seeded_accounts_are_real(backend: Backend) {
    let app = spawn(backend).await;
    let rp = app.confidential().await;
    let hash = app.state.passwords.hash(PASSWORD.into()).await.unwrap();
    let now = app.state.clock.now();
    let seed = idp::store::seed::Seed { accounts: 250, client_id: &rp.id, password_hash: &hash, now };
    idp::store::seed::seed(&app.state.store, &seed).await.unwrap();
    let (code, _) = sign_in(&app, &rp, "seed250", &[]).await;
    assert_eq!(redeem(&app, &rp, &code, None).await.status(), 200);
    let (code, _) = sign_in(&app, &rp, "13900000007", &[]).await;
    assert_eq!(redeem(&app, &rp, &code, None).await.status(), 200, "by the seeded phone");
    use sea_orm::{EntityTrait, PaginatorTrait};
    let n = idp::store::entities::refresh_token::Entity::find().count(&app.state.store).await.unwrap();
    assert!(n >= 250, "{n}");
}
crate::both!(plans_seeded_accounts_are_real, super::seeded_accounts_are_real);
