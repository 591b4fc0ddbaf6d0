//! Many nodes on one PostgreSQL (issue 16): three nodes behind a loopback
//! proxy share one database. A flow begun on the nodes finishes after two
//! of them are gone; a client disabled through one node is refused by
//! another at once (the bus, not the cache expiry); a scan decided
//! through one node wakes the browser waiting on another; the database
//! going away answers 503 and everything recovers by itself, the bus
//! included.
use crate::support::*;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A loopback TCP load balancer: round robin over the live backends,
/// skipping any that refuses; a backend can be taken out, which also ends
/// the connections already going to it.
/// Each live backend with the connections piped to it.
type Backends = Arc<Mutex<Vec<(SocketAddr, Vec<JoinHandle<()>>)>>>;

struct Balancer {
    addr: SocketAddr,
    backends: Backends,
    accept: JoinHandle<()>,
}

impl Balancer {
    async fn start(backends: Vec<SocketAddr>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let table: Backends = Arc::new(Mutex::new(backends.into_iter().map(|a| (a, Vec::new())).collect()));
        let next = Arc::new(AtomicUsize::new(0));
        let shared = table.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let live: Vec<SocketAddr> = shared.lock().unwrap().iter().map(|(a, _)| *a).collect();
                if live.is_empty() {
                    continue;
                }
                let start = next.fetch_add(1, Ordering::Relaxed);
                let mut chosen = None;
                for i in 0..live.len() {
                    let target = live[(start + i) % live.len()];
                    if let Ok(out) = TcpStream::connect(target).await {
                        chosen = Some((target, out));
                        break;
                    }
                }
                let Some((target, mut outbound)) = chosen else { continue };
                let pipe = tokio::spawn(async move {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
                if let Some(entry) = shared.lock().unwrap().iter_mut().find(|(a, _)| *a == target) {
                    entry.1.push(pipe);
                }
            }
        });
        Balancer { addr, backends: table, accept }
    }

    /// The backend is gone: no new connections, open ones cut.
    fn remove(&self, backend: SocketAddr) {
        let mut table = self.backends.lock().unwrap();
        if let Some(i) = table.iter().position(|(a, _)| *a == backend) {
            for pipe in table.remove(i).1 {
                pipe.abort();
            }
        }
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

struct Node {
    app: TestApp,
    addr: SocketAddr,
    server: JoinHandle<()>,
}

/// `n` nodes on one fresh PostgreSQL database, all with the balancer's
/// address as their issuer.
async fn cluster(admin_url: &str, n: usize) -> (Vec<Node>, Balancer, String) {
    let front = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let front_port = front.local_addr().unwrap().port();
    let database_url = fresh_postgres(admin_url).await;
    let mut nodes = Vec::new();
    for i in 0..n {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let dir = temp_dir();
        let env = vec![
            ("IDP_ISSUER".to_string(), format!("http://127.0.0.1:{front_port}")),
            ("IDP_LISTEN".to_string(), addr.to_string()),
            ("IDP_DATA_DIR".to_string(), dir.display().to_string()),
            ("IDP_DATABASE_URL".to_string(), database_url.clone()),
            ("IDP_MASTER_KEY".to_string(), "7f".repeat(32)),
        ];
        let config = idp::config::Config::load_from(None, &env).unwrap();
        // The first node migrates; the others find the schema in place.
        let state = idp::build_state(config, i == 0).await.unwrap();
        let base = state.config.issuer.clone();
        let server = tokio::spawn({
            let state = state.clone();
            async move {
                let _ = idp::serve(state, listener).await;
            }
        });
        nodes.push(Node { app: TestApp { base, state, dir, database_url: database_url.clone() }, addr, server });
    }
    let balancer = Balancer::start(nodes.iter().map(|n| n.addr).collect()).await;
    // The issuer's address forwards to the balancer.
    forward(front, balancer.addr);
    (nodes, balancer, database_url)
}

/// Forwards every connection on `listener` to `to`.
fn forward(listener: TcpListener, to: SocketAddr) {
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut out) = TcpStream::connect(to).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                }
            });
        }
    });
}

/// A client with no connection pool: every request opens a connection
/// through the balancer, as many browsers would.
fn fresh_api() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).pool_max_idle_per_host(0).build().unwrap()
}

async fn client_credentials(base: &str, client: &TestClient) -> reqwest::StatusCode {
    fresh_api()
        .post(format!("{base}/token"))
        .basic_auth(&client.id, client.secret.as_deref())
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .status()
}

/// Asks until `want` or the deadline; returns how long it took.
async fn until_status(base: &str, client: &TestClient, want: u16, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let got = client_credentials(base, client).await;
        if got.as_u16() == want {
            return started.elapsed();
        }
        assert!(started.elapsed() < within, "still {got} after {within:?}, want {want}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_behind_a_proxy() {
    let Some(Backend::Postgres(admin_url)) = Backend::postgres() else { return };
    let (nodes, balancer, database_url) = cluster(&admin_url, 3).await;
    let front = nodes[0].app.base.clone();
    let (a, b) = (&nodes[0].app, &nodes[1].app);
    let node_url = |n: &Node| format!("http://{}", n.addr);

    // A client disabled through node A is refused by node B at once, though
    // B had it cached (its cache would otherwise keep it for minutes).
    let client = a.confidential().await;
    assert_eq!(client_credentials(&node_url(&nodes[1]), &client).await, 200);
    assert_eq!(client_credentials(&node_url(&nodes[1]), &client).await, 200, "now cached on B");
    let by = idp::domain::audit::Actor::Operator("test");
    assert!(a.state.clients.set_disabled(&client.id, true, by).await.unwrap());
    let took = until_status(&node_url(&nodes[1]), &client, 401, Duration::from_secs(5)).await;
    assert!(took < Duration::from_secs(5), "B refused the disabled client after {took:?}");
    assert!(a.state.clients.set_disabled(&client.id, false, by).await.unwrap());
    until_status(&node_url(&nodes[1]), &client, 200, Duration::from_secs(5)).await;

    // A code flow through the balancer; two of the three nodes go away
    // before the code is redeemed: nothing was only in their memory.
    b.user("node_user").await;
    let rp = a.confidential().await;
    let front_app = TestApp { base: front.clone(), state: a.state.clone(), dir: temp_dir(), database_url };
    let (code, _) = sign_in(&front_app, &rp, "node_user", &[]).await;
    for n in &nodes[..2] {
        balancer.remove(n.addr);
        n.app.state.shutdown.cancel();
        n.server.abort();
    }
    let res = fresh_api()
        .post(format!("{front}/token"))
        .basic_auth(&rp.id, rp.secret.as_deref())
        .form(&[("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", &rp.redirect_uri)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "the third node finishes the flow");
    let tokens = json(res).await;
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    let res = fresh_api()
        .get(format!("{front}/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = fresh_api()
        .post(format!("{front}/token"))
        .basic_auth(&rp.id, rp.secret.as_deref())
        .form(&[("grant_type", "refresh_token"), ("refresh_token", refresh.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "the refresh token rotates on the remaining node");

    // The database goes away (new connections refused, open ones ended):
    // the last node answers 503 rather than a false success, then recovers
    // by itself, and its bus listens again.
    let c = &nodes[2].app;
    let name = c.database_url.rsplit('/').next().unwrap().to_string();
    use sea_orm::ConnectionTrait;
    let admin = sea_orm::Database::connect(admin_url.as_str()).await.unwrap();
    admin.execute_unprepared(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false")).await.unwrap();
    let kill = format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    );
    admin.execute_unprepared(&kill).await.unwrap();
    let fresh = TestClient { id: "nobody-cached-this".into(), secret: Some("x".into()), redirect_uri: String::new() };
    until_status(&front, &fresh, 503, Duration::from_secs(20)).await;
    admin.execute_unprepared(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true")).await.unwrap();
    until_status(&front, &rp, 200, Duration::from_secs(20)).await;
    // The bus is back: a change made elsewhere (here: straight through the
    // core on a new handle, as the CLI would) reaches the node.
    let mut heard = c.state.bus.subscribe();
    let cli = idp::store::connect(&c.database_url).await.unwrap();
    let elsewhere = idp::domain::clients::ClientService::new(cli, c.state.hasher.clone(), c.state.clock.clone());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        elsewhere.set_disabled(&rp.id, true, by).await.unwrap();
        let got = tokio::time::timeout(Duration::from_millis(500), async {
            loop {
                if let Ok(idp::store::bus::Notice::Changed(_, id)) = heard.recv().await
                    && id == rp.id
                {
                    return;
                }
            }
        })
        .await;
        if got.is_ok() {
            break;
        }
        // Not heard: change it back, so the next round is a change again.
        elsewhere.set_disabled(&rp.id, false, by).await.unwrap();
        assert!(Instant::now() < deadline, "the bus never came back");
    }
    until_status(&front, &rp, 401, Duration::from_secs(5)).await;
    admin.close().await.ok();
}
