//! `citizen-app`: the reference "government app" for scan-to-login (D1/D2).
//! It uses only the provider's public API, as a real mobile app would:
//!
//! - `login`: signs in as an ordinary public OIDC client (authorization
//!   code + PKCE S256, refresh token), asking for the `scan_login` scope an
//!   administrator permitted it. A real app shows the sign-in page in a
//!   browser tab; this one fills in the same form over HTTP.
//! - `scan URL`: reads the ticket behind a QR code, shows which site is
//!   asking, from which browser address and rough location, and asks the
//!   person to confirm — a fresh decision each time (`--yes` / `--deny`
//!   answer for scripts; `--face PHOTO` runs the face check through the
//!   provider's verifier first, on face-check tickets). Tickets of a face
//!   gate say what the face check is for — an enterprise's first sign-in,
//!   registering as its agent, approving an agent (which agent, for which
//!   enterprise), binding a relative — and always need `--face`.
//! - `requests`: sign-in requests a relying app sent from its own server
//!   (CIBA) wait here without a QR code: each is shown with the app's name,
//!   its binding message, the data it asks for and where the request came
//!   from, and confirmed or denied like a scanned code.
//!
//! Tokens are kept in a JSON file (`--state`, mode 0600).
use anyhow::{Context, anyhow, bail};
use clap::{Parser, Subcommand};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

const REDIRECT_URI: &str = "http://127.0.0.1/callback";

#[derive(Parser)]
#[command(name = "citizen-app", about = "Reference citizen app: sign in, then scan QR codes to sign in on a PC")]
struct Cli {
    /// The identity provider (its issuer URL).
    #[arg(long, env = "CITIZEN_APP_ISSUER", default_value = "http://localhost:8080")]
    issuer: String,
    /// The app's client id (a public client permitted `scan_login`).
    #[arg(long, env = "CITIZEN_APP_CLIENT_ID", default_value = "citizen-app")]
    client_id: String,
    /// Where the app keeps its tokens.
    #[arg(long, env = "CITIZEN_APP_STATE", default_value = "citizen-app.json")]
    state: PathBuf,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Sign the app in (authorization code + PKCE).
    Login {
        #[arg(long)]
        username: String,
        #[arg(long, env = "CITIZEN_APP_PASSWORD")]
        password: String,
    },
    /// Scan a QR code: show what is asking and confirm or deny.
    Scan {
        /// The URL in the QR code (`{issuer}/scan/t/{ticket}`).
        url: String,
        /// Confirm without asking (the person already said yes).
        #[arg(long, conflicts_with = "deny")]
        yes: bool,
        /// Deny without asking.
        #[arg(long)]
        deny: bool,
        /// Run the face check through the provider's verifier with this
        /// photo (`POST /api/identity/face`; the sandbox verifier decides by
        /// the account's identity — on a kin gate by the relative's, who
        /// faces this phone), then confirm with its result.
        #[arg(long, value_name = "PHOTO")]
        face: Option<std::path::PathBuf>,
    },
    /// Requests waiting for you without a QR code (CIBA): show each, then
    /// confirm or deny it.
    Requests {
        /// Confirm without asking.
        #[arg(long, conflicts_with = "deny")]
        yes: bool,
        /// Deny without asking.
        #[arg(long)]
        deny: bool,
        /// Run the face check with this photo first (requests asking for a
        /// higher level need it).
        #[arg(long, value_name = "PHOTO")]
        face: Option<std::path::PathBuf>,
    },
}

#[derive(Serialize, Deserialize)]
struct Saved {
    issuer: String,
    client_id: String,
    access_token: String,
    refresh_token: Option<String>,
    expires_at: i64,
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn random_b64(bytes: usize) -> String {
    use base64::Engine;
    let mut buf = vec![0u8; bytes];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

fn pkce_challenge(verifier: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
}

/// A minimal cookie jar for the sign-in pages (one host, no paths).
#[derive(Default)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    fn take(&mut self, res: &reqwest::Response) {
        for v in res.headers().get_all(reqwest::header::SET_COOKIE) {
            if let Some((name, value)) =
                v.to_str().ok().and_then(|c| c.split(';').next()).and_then(|c| c.split_once('='))
            {
                self.0.insert(name.trim().to_string(), value.trim().to_string());
            }
        }
    }
    fn header(&self) -> String {
        self.0.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }
}

fn hidden(html: &str, name: &str) -> Option<String> {
    let needle = format!("name=\"{name}\" value=\"");
    let start = html.find(&needle)? + needle.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].replace("&#x2F;", "/").replace("&amp;", "&"))
}

fn location(res: &reqwest::Response) -> Option<String> {
    res.headers().get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok()).map(String::from)
}

struct App {
    http: reqwest::Client,
    issuer: String,
    client_id: String,
    state: PathBuf,
}

impl App {
    fn url(&self, path: &str) -> String {
        format!("{}{}", self.issuer, path)
    }

    async fn login(&self, username: &str, password: &str) -> anyhow::Result<()> {
        let verifier = random_b64(32);
        let mut auth = url::Url::parse(&self.url("/authorize"))?;
        auth.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", REDIRECT_URI)
            .append_pair("scope", "openid profile offline_access scan_login")
            .append_pair("state", &random_b64(16))
            .append_pair("nonce", &random_b64(16))
            .append_pair("code_challenge", &pkce_challenge(&verifier))
            .append_pair("code_challenge_method", "S256");
        let mut jar = Jar::default();
        let mut next = auth.to_string();
        let mut posted_login = false;
        let code = loop {
            if next.starts_with(REDIRECT_URI) {
                let u = url::Url::parse(&next)?;
                let q: BTreeMap<String, String> = u.query_pairs().into_owned().collect();
                if let Some(e) = q.get("error") {
                    bail!("sign-in refused: {e} {}", q.get("error_description").cloned().unwrap_or_default());
                }
                break q.get("code").cloned().ok_or_else(|| anyhow!("no code in the redirect"))?;
            }
            let res = self.http.get(&next).header(reqwest::header::COOKIE, jar.header()).send().await?;
            jar.take(&res);
            if let Some(l) = location(&res) {
                next = if l.starts_with('/') { self.url(&l) } else { l };
                continue;
            }
            let path = url::Url::parse(&next)?.path().to_string();
            let body = res.text().await?;
            let form: Vec<(&str, String)> = match path.as_str() {
                "/login" if !posted_login => {
                    posted_login = true;
                    vec![
                        ("req", hidden(&body, "req").context("no sign-in form")?),
                        ("csrf", hidden(&body, "csrf").context("no sign-in form")?),
                        ("username", username.into()),
                        ("password", password.into()),
                    ]
                }
                "/login" => bail!("wrong username or password"),
                "/consent" => vec![
                    ("req", hidden(&body, "req").context("no consent form")?),
                    ("csrf", hidden(&body, "csrf").context("no consent form")?),
                    ("decision", "allow".into()),
                ],
                _ => bail!("unexpected page {path}"),
            };
            let res = self
                .http
                .post(self.url(&path))
                .header(reqwest::header::COOKIE, jar.header())
                .form(&form)
                .send()
                .await?;
            jar.take(&res);
            next = match location(&res) {
                Some(l) if l.starts_with('/') => self.url(&l),
                Some(l) => l,
                None if path == "/login" => bail!("wrong username or password"),
                None => bail!("{path} answered {}", res.status()),
            };
        };
        let res = self
            .http
            .post(self.url("/token"))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT_URI),
                ("client_id", self.client_id.as_str()),
                ("code_verifier", verifier.as_str()),
            ])
            .send()
            .await?;
        self.save_tokens(res).await?;
        println!("signed in as {username}");
        Ok(())
    }

    async fn save_tokens(&self, res: reqwest::Response) -> anyhow::Result<Saved> {
        let status = res.status();
        let body: Value = res.json().await?;
        if !status.is_success() {
            bail!("token endpoint: {} {}", body["error"], body["error_description"]);
        }
        let scope = body["scope"].as_str().unwrap_or_default();
        if !scope.split(' ').any(|s| s == "scan_login") {
            eprintln!("warning: the provider did not grant scan_login (granted: {scope}); ask an administrator");
        }
        let saved = Saved {
            issuer: self.issuer.clone(),
            client_id: self.client_id.clone(),
            access_token: body["access_token"].as_str().context("no access_token")?.to_string(),
            refresh_token: body["refresh_token"].as_str().map(String::from),
            expires_at: now() + body["expires_in"].as_i64().unwrap_or(60),
        };
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        opts.open(&self.state)?.write_all(serde_json::to_string_pretty(&saved)?.as_bytes())?;
        Ok(saved)
    }

    /// A live access token, refreshed (with rotation) when it is about to expire.
    async fn access_token(&self) -> anyhow::Result<String> {
        let text = std::fs::read_to_string(&self.state)
            .with_context(|| format!("not signed in (no {}): run `citizen-app login`", self.state.display()))?;
        let saved: Saved = serde_json::from_str(&text)?;
        if saved.issuer != self.issuer {
            bail!("signed in at {}, not {}: run `citizen-app login`", saved.issuer, self.issuer);
        }
        if saved.expires_at > now() + 10 {
            return Ok(saved.access_token);
        }
        let Some(refresh) = saved.refresh_token else { bail!("session expired: run `citizen-app login`") };
        let res = self
            .http
            .post(self.url("/token"))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", &refresh), ("client_id", &self.client_id)])
            .send()
            .await?;
        Ok(self.save_tokens(res).await?.access_token)
    }

    async fn call(&self, req: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let res = req.bearer_auth(self.access_token().await?).send().await?;
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!(
                "{}: {} ({})",
                status.as_u16(),
                body["error"].as_str().unwrap_or("error"),
                body["error_description"].as_str().unwrap_or_default()
            );
        }
        Ok(body)
    }

    async fn scan(&self, qr: &str, yes: bool, deny: bool, face: Option<&std::path::Path>) -> anyhow::Result<()> {
        // Only codes of our own provider: a QR pointing anywhere else is not
        // a sign-in request of ours, whatever it looks like.
        let prefix = self.url("/scan/t/");
        let ticket = qr
            .strip_prefix(&prefix)
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
            .ok_or_else(|| anyhow!("not a sign-in code of {}", self.issuer))?;
        self.decide(ticket, yes, deny, face).await
    }

    /// The requests waiting for this person without a QR code (CIBA).
    async fn requests(&self, yes: bool, deny: bool, face: Option<&std::path::Path>) -> anyhow::Result<()> {
        let list = self.call(self.http.get(self.url("/api/scan/requests"))).await?;
        let requests = list["requests"].as_array().cloned().unwrap_or_default();
        if requests.is_empty() {
            println!("No requests waiting.");
        }
        for r in requests {
            let ticket = r["ticket"].as_str().unwrap_or_default();
            self.decide(ticket, yes, deny, face).await?;
        }
        Ok(())
    }

    /// Shows what a ticket asks, then confirms or denies it.
    async fn decide(&self, ticket: &str, yes: bool, deny: bool, face: Option<&std::path::Path>) -> anyhow::Result<()> {
        let api = self.url(&format!("/api/scan/tickets/{ticket}"));
        let t = self.call(self.http.get(&api)).await?;
        let site = t["client"]["name"].as_str().unwrap_or("统一身份认证平台");
        let purpose = t["purpose"].as_str().unwrap_or_default();
        let what = match purpose {
            "login" => "sign in on a computer (登录)".to_string(),
            "face" => "verify your face for this browser (人脸识别认证)".to_string(),
            "approval" => "approve a request (审批)".to_string(),
            "ciba" => "sign in to this site, asked by its own service (登录请求)".to_string(),
            other => other.to_string(),
        };
        println!("Request:   {what}");
        if let Some(about) = gate_text(&t["detail"]) {
            println!("For:       {about}");
        }
        println!("Site:      {site}");
        if let Some(m) = t["detail"]["binding_message"].as_str() {
            println!("Code:      {m} (it must match what the site shows you)");
        }
        for line in t["requested"].as_array().into_iter().flatten() {
            println!("Shares:    {}", line["text"].as_str().unwrap_or_default());
        }
        println!(
            "Browser:   {} ({})",
            t["browser"]["ip"].as_str().unwrap_or("?"),
            t["browser"]["location"].as_str().unwrap_or("?")
        );
        println!("Requested: {} (unix time), valid until {}", t["created_at"], t["expires_at"]);
        if t["face_required"].as_bool().unwrap_or(purpose == "face") && face.is_none() && !deny {
            bail!("this code asks for a face check: run it with --face PHOTO");
        }
        let face_verified = match face {
            Some(photo) if !deny => {
                use base64::Engine;
                let bytes = std::fs::read(photo)?;
                let sample = base64::engine::general_purpose::STANDARD.encode(bytes);
                // A kin gate's face is the relative's, in front of this
                // phone: the provider checks the person the gate names.
                let body = if t["detail"]["action"] == "kin_bind" {
                    println!(
                        "Face:      the relative {} faces the camera",
                        t["detail"]["person"].as_str().unwrap_or("?")
                    );
                    serde_json::json!({ "face": sample, "ticket": ticket })
                } else {
                    serde_json::json!({ "face": sample })
                };
                let out = self.call(self.http.post(self.url("/api/identity/face")).json(&body)).await?;
                println!("Face check: {}", out["result"].as_str().unwrap_or("done"));
                true
            }
            _ => false,
        };
        let confirm = if yes {
            true
        } else if deny {
            false
        } else {
            print!("Is this you, on a computer you are using now? Confirm? [y/N] ");
            std::io::stdout().flush()?;
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            matches!(line.trim(), "y" | "Y" | "yes" | "是")
        };
        let out = if confirm {
            let body = if face_verified { serde_json::json!({ "face_verified": true }) } else { serde_json::json!({}) };
            self.call(self.http.post(format!("{api}/confirm")).json(&body)).await?
        } else {
            self.call(self.http.post(format!("{api}/deny"))).await?
        };
        println!("{}", out["status"].as_str().unwrap_or("done"));
        Ok(())
    }
}

/// What a face gate's ticket is for, from its `detail` (masked by the
/// provider): the line the person reads before deciding.
fn gate_text(d: &Value) -> Option<String> {
    let enterprise = || {
        format!(
            "{} ({})",
            d["enterprise"]["name"].as_str().unwrap_or("?"),
            d["enterprise"]["uscc"].as_str().unwrap_or("?")
        )
    };
    Some(match d["action"].as_str()? {
        "approve_agent" => format!(
            "approve agent {} ({}) for {} (审核代理人)",
            d["agent"]["name"].as_str().unwrap_or("?"),
            d["agent"]["id_number"].as_str().unwrap_or("?"),
            enterprise()
        ),
        "enterprise_login" => format!("first sign-in for {} (企业首次登录)", enterprise()),
        "register_agent" => format!("register as an agent of {} (代理人注册)", enterprise()),
        "register_enterprise" => format!("register the enterprise {} as its representative (法人注册)", enterprise()),
        "kin_bind" => format!(
            "bind {} as your relative ({}) (亲属绑定)",
            d["person"].as_str().unwrap_or("?"),
            d["relation"].as_str().unwrap_or("relative")
        ),
        other => other.to_string(),
    })
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let run = async {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(30))
            .build()?;
        let app = App {
            http,
            issuer: cli.issuer.trim_end_matches('/').to_string(),
            client_id: cli.client_id,
            state: cli.state,
        };
        match cli.command {
            Cmd::Login { username, password } => app.login(&username, &password).await,
            Cmd::Scan { url, yes, deny, face } => app.scan(&url, yes, deny, face.as_deref()).await,
            Cmd::Requests { yes, deny, face } => app.requests(yes, deny, face.as_deref()).await,
        }
    };
    let result = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt.block_on(run),
        Err(e) => Err(e.into()),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("citizen-app: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
