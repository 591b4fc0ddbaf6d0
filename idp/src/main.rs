//! The `idp` command line.
use clap::{Parser, Subcommand};
use idp::config::Config;
use idp::domain::audit::Actor;
use idp::domain::clients::{AuthMethod, NewClient};
use idp::domain::identity::users::NewUser;
use std::path::PathBuf;
use std::process::ExitCode;

mod audit_cli;
mod identity_cli;
mod kin_cli;
mod plugin_cli;
mod staff_cli;

#[derive(Parser)]
#[command(name = "idp", version, about = "OpenID Connect identity provider")]
struct Cli {
    /// TOML configuration file; every key can also be set as IDP_<KEY>.
    #[arg(long, short, env = "IDP_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

// Parsed once per run: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run the server (migrates the database first unless --no-migrate).
    Serve {
        #[arg(long)]
        no_migrate: bool,
        /// Seed a demo user and clients and enable the /demo relying party.
        #[arg(long)]
        demo: bool,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Validate the configuration and explain any mistake.
    CheckConfig,
    /// Manage relying parties.
    Client {
        #[command(subcommand)]
        cmd: ClientCmd,
    },
    /// Manage accounts.
    User {
        #[command(subcommand)]
        cmd: UserCmd,
    },
    /// Manage signing keys.
    Keys {
        #[command(subcommand)]
        cmd: KeysCmd,
    },
    /// Plugins: what is loaded, what was refused and why; enable/disable.
    Plugin {
        #[command(subcommand)]
        cmd: plugin_cli::PluginCmd,
    },
    /// Real-name identity: operators, counter (L4) verifications, records.
    Identity {
        #[command(subcommand)]
        cmd: identity_cli::IdentityCmd,
    },
    /// The operators' queue of reported kin bindings (E2).
    Kin {
        #[command(subcommand)]
        cmd: kin_cli::KinCmd,
    },
    /// The operators' appeal queue (A8).
    Appeal {
        #[command(subcommand)]
        cmd: AppealCmd,
    },
    /// Legal persons (C1, C5): seed an enterprise; the staff queue of
    /// phone and representative change requests.
    Enterprise {
        #[command(subcommand)]
        cmd: EnterpriseCmd,
    },
    /// Staff of the operator console: grant, revoke and list roles.
    Staff {
        #[command(subcommand)]
        cmd: staff_cli::StaffCmd,
    },
    /// The audit trail: `verify` recomputes its hash chain.
    Audit {
        #[command(subcommand)]
        cmd: audit_cli::AuditCmd,
    },
    /// Development helpers (the message sink of the dev SMS gateway).
    Dev {
        #[command(subcommand)]
        cmd: DevCmd,
    },
}

#[derive(Subcommand)]
enum AppealCmd {
    /// Appeals waiting for review (or all with --status all).
    List {
        #[arg(long, default_value = "pending")]
        status: String,
        #[arg(long)]
        json: bool,
    },
    /// Approve: the taken value is released (a phone moves to the appellant's account; a name appeal renames it).
    Approve {
        /// Generated ids may start with `-`.
        #[arg(allow_hyphen_values = true)]
        id: String,
        #[arg(long, default_value = "operator")]
        operator: String,
    },
    /// Reject with a reason the appellant receives by SMS.
    Reject {
        /// Generated ids may start with `-`.
        #[arg(allow_hyphen_values = true)]
        id: String,
        #[arg(long)]
        reason: String,
        #[arg(long, default_value = "operator")]
        operator: String,
    },
}

#[derive(Subcommand)]
enum EnterpriseCmd {
    /// Register an enterprise and its legal representative on record.
    Create {
        #[arg(long)]
        uscc: String,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "540102")]
        region: String,
        #[arg(long)]
        representative_name: String,
        /// The representative's document number (any type, A2).
        #[arg(long)]
        representative_id: String,
        /// Its type: resident_id, passport, hk_macau_travel_permit,
        /// taiwan_travel_permit, foreign_permanent_resident_id,
        /// military_officer_id, hmt_residence_permit (default: guessed from
        /// the number, resident ID numbers first).
        #[arg(long)]
        representative_doc_type: Option<String>,
        #[arg(long)]
        representative_phone: String,
        /// 6–15 characters, at least two of digits, letters and symbols.
        #[arg(long, env = "IDP_ENTERPRISE_PASSWORD")]
        password: String,
        /// Who created it, for the audit record.
        #[arg(long, default_value = "operator")]
        operator: String,
    },
    /// Add an agent of the enterprise for an existing account (staff acting
    /// on the representative's written authorisation). Pending until the
    /// representative approves it at /enterprise/agents, unless --approved
    /// says staff saw the representative's approval. Either way the agent's
    /// first sign-in still needs the face check through the app (C1).
    AddAgent {
        #[arg(long)]
        uscc: String,
        /// Username, phone or ID number of the agent's account.
        #[arg(long)]
        agent: String,
        #[arg(long)]
        approved: bool,
        #[arg(long, default_value = "operator")]
        operator: String,
    },
    /// Set an agent's enterprise-login password (C2) for an operator: the
    /// agent's sessions for the enterprise and its refresh tokens end.
    AgentPassword {
        #[arg(long)]
        uscc: String,
        /// Username, phone or ID number of the agent's account.
        #[arg(long)]
        agent: String,
        /// 6–15 characters, at least two of digits, letters and symbols.
        #[arg(long, env = "IDP_AGENT_PASSWORD")]
        password: String,
        #[arg(long, default_value = "operator")]
        operator: String,
    },
    /// Change requests waiting for staff (or all with --status all).
    Requests {
        #[arg(long, default_value = "pending")]
        status: String,
        #[arg(long)]
        json: bool,
    },
    /// Approve a change request: the record takes the new phone/representative.
    Approve {
        /// Generated ids may start with `-`.
        #[arg(allow_hyphen_values = true)]
        id: String,
        #[arg(long, default_value = "operator")]
        operator: String,
    },
    /// Reject a change request with a reason.
    Reject {
        /// Generated ids may start with `-`.
        #[arg(allow_hyphen_values = true)]
        id: String,
        #[arg(long)]
        reason: String,
        #[arg(long, default_value = "operator")]
        operator: String,
    },
}

#[derive(Subcommand)]
enum DevCmd {
    /// Messages the development gateways recorded instead of sending.
    Messages {
        /// Only messages to this recipient (phone number, or captcha id;
        /// generated ids may start with `-`).
        #[arg(long, allow_hyphen_values = true)]
        to: Option<String>,
        /// `sms` (default), `captcha` (dev-only answers of graphic captchas) or `all`.
        #[arg(long, default_value = "sms")]
        channel: String,
        #[arg(long, default_value_t = 20)]
        limit: u64,
        #[arg(long)]
        json: bool,
    },
    /// Large data for scale checks: accounts `seed1…seedN`, each with a
    /// session, a grant for CLIENT_ID and a refresh token (issue 16).
    Seed {
        #[arg(long)]
        accounts: u64,
        /// An existing client the seeded grants belong to.
        #[arg(long)]
        client_id: String,
        /// The password every seeded account shares.
        #[arg(long, env = "IDP_SEED_PASSWORD")]
        password: String,
    },
}

/// The certificate a `tls_client_auth` client presents (RFC 8705 §2.1.2):
/// exactly one of these.
#[derive(clap::Args, Debug, Default)]
struct TlsClientAuthArgs {
    /// The certificate's subject DN, e.g. `CN=app,O=Example,C=CN`.
    #[arg(long)]
    tls_subject_dn: Option<String>,
    /// A dNSName in the certificate's subjectAltName.
    #[arg(long)]
    tls_san_dns: Option<String>,
    /// A uniformResourceIdentifier in the subjectAltName.
    #[arg(long)]
    tls_san_uri: Option<String>,
    /// An iPAddress in the subjectAltName.
    #[arg(long)]
    tls_san_ip: Option<String>,
    /// An rfc822Name in the subjectAltName.
    #[arg(long)]
    tls_san_email: Option<String>,
}

impl TlsClientAuthArgs {
    /// The registration metadata these flags stand for.
    fn metadata(self) -> Option<serde_json::Map<String, serde_json::Value>> {
        use idp::domain::clients::mtls;
        let pairs = [
            (mtls::SUBJECT_DN, self.tls_subject_dn),
            (mtls::SAN_DNS, self.tls_san_dns),
            (mtls::SAN_URI, self.tls_san_uri),
            (mtls::SAN_IP, self.tls_san_ip),
            (mtls::SAN_EMAIL, self.tls_san_email),
        ];
        let map: serde_json::Map<_, _> =
            pairs.into_iter().filter_map(|(k, v)| v.map(|v| (k.to_string(), v.into()))).collect();
        (!map.is_empty()).then_some(map)
    }
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
enum ClientCmd {
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        client_id: Option<String>,
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        /// A public client (native/SPA): no secret, PKCE required.
        #[arg(long)]
        public: bool,
        /// client_secret_basic (default), client_secret_post, private_key_jwt,
        /// tls_client_auth, self_signed_tls_client_auth, none
        #[arg(long)]
        auth_method: Option<String>,
        /// ID token signing algorithm: ES256 (default), PS256 or RS256.
        #[arg(long)]
        id_token_alg: Option<String>,
        /// Public JWKS (JSON) for private_key_jwt.
        #[arg(long)]
        jwks: Option<String>,
        #[arg(long = "grant-type")]
        grant_types: Vec<String>,
        /// Space-separated scopes the client may request.
        #[arg(long)]
        scope: Option<String>,
        #[arg(long)]
        backchannel_logout_uri: Option<String>,
        /// CIBA delivery mode (with `--grant-type urn:openid:params:grant-type:ciba`): poll (default) or ping.
        #[arg(long)]
        backchannel_token_delivery_mode: Option<String>,
        /// CIBA ping mode: where the client is told a request was decided.
        #[arg(long)]
        backchannel_client_notification_endpoint: Option<String>,
        /// First-party client: no consent page.
        #[arg(long)]
        skip_consent: bool,
        /// The lowest assurance level the client accepts: 1–4 or its acr value.
        #[arg(long)]
        min_acr: Option<String>,
        /// `fapi2`: the FAPI 2.0 Security Profile (needs private_key_jwt).
        #[arg(long)]
        profile: Option<String>,
        /// Authorization requests only through /par (RFC 9126).
        #[arg(long)]
        require_par: bool,
        /// Access tokens only DPoP-bound (RFC 9449).
        #[arg(long)]
        dpop: bool,
        /// Access and refresh tokens bound to the client certificate (RFC 8705 §3).
        #[arg(long)]
        tls_bound: bool,
        #[command(flatten)]
        tls: TlsClientAuthArgs,
        /// `public` or `pairwise` subjects (OIDC Core §8); default `protocol.subject_type`.
        #[arg(long)]
        subject_type: Option<String>,
        /// A JSON array of URIs listing every redirect URI; its host is the pairwise sector.
        #[arg(long)]
        sector_identifier_uri: Option<String>,
        /// The logo on the sign-in and consent pages: an https URL or a path on this server.
        #[arg(long)]
        logo_uri: Option<String>,
        /// A display name in another language, `LANG=NAME` (e.g. `en=Tax Office`); repeatable.
        #[arg(long = "display-name")]
        display_names: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Set the logo and display names shown on sign-in and consent (replaces both).
    Brand {
        /// Generated ids may start with `-`.
        #[arg(allow_hyphen_values = true)]
        client_id: String,
        /// An https URL or a path on this server; omitted = no logo.
        #[arg(long)]
        logo_uri: Option<String>,
        /// `LANG=NAME`, repeatable.
        #[arg(long = "display-name")]
        display_names: Vec<String>,
    },
    /// Change a client's mutual-TLS settings (RFC 8705): its method, the
    /// certificate subject it presents, whether its tokens are bound.
    Update {
        /// Generated ids may start with `-`.
        #[arg(allow_hyphen_values = true)]
        client_id: String,
        /// tls_client_auth or self_signed_tls_client_auth (a secret stops working).
        #[arg(long)]
        auth_method: Option<String>,
        /// `true` or `false`: access and refresh tokens bound to the certificate.
        #[arg(long)]
        tls_bound: Option<bool>,
        #[command(flatten)]
        tls: TlsClientAuthArgs,
    },
    List {
        #[arg(long)]
        json: bool,
    },
    Show {
        /// Generated ids may start with `-`.
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
    Delete {
        /// Generated ids may start with `-`.
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
    /// Permit the client to request a plugin scope.
    AllowScope {
        /// Generated client ids may start with `-`.
        #[arg(allow_hyphen_values = true)]
        client_id: String,
        scope: String,
    },
    /// Withdraw a plugin scope; takes effect on the client's next request.
    DenyScope {
        /// Generated client ids may start with `-`.
        #[arg(allow_hyphen_values = true)]
        client_id: String,
        scope: String,
    },
    /// Issue an initial access token for dynamic client registration
    /// (RFC 7591, `protocol.registration`); shown once, stored as a digest.
    InitialToken {
        /// How many registrations it allows (1 = single use).
        #[arg(long, default_value_t = 1)]
        uses: i64,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 86_400)]
        ttl: i64,
        /// Whom it was given to, for the audit trail.
        #[arg(long, default_value = "")]
        label: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum UserCmd {
    Create {
        #[arg(long)]
        username: String,
        /// Prefer IDP_NEW_PASSWORD in scripts so it stays out of shell history.
        #[arg(long, env = "IDP_NEW_PASSWORD")]
        password: String,
        #[arg(long)]
        phone: Option<String>,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        id_number: Option<String>,
        #[arg(long)]
        json: bool,
    },
    List {
        #[arg(long)]
        json: bool,
    },
    SetPassword {
        /// Username, phone number or ID number.
        login: String,
        #[arg(long, env = "IDP_NEW_PASSWORD")]
        password: String,
    },
    /// Same as `idp identity set-operator`.
    SetOperator {
        login: String,
        #[arg(long)]
        revoke: bool,
    },
}

#[derive(Subcommand)]
enum KeysCmd {
    List {
        #[arg(long)]
        json: bool,
    },
    Rotate {
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(config.log_format);
    idp::server::configure_allocator();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Log lines on stderr, filtered by `IDP_LOG` (e.g. `info,idp::access=debug`
/// adds one line per request). `json`: one object per line with the
/// request's span (its `request_id`, method and path, never the query) so a
/// collector can follow one request across lines.
fn init_logging(format: idp::config::LogFormat) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("IDP_LOG").unwrap_or_else(|_| "info,sqlx=warn,sea_orm=warn".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        idp::config::LogFormat::Json => {
            builder.json().with_current_span(true).with_span_list(false).flatten_event(true).init()
        }
        idp::config::LogFormat::Text => builder.init(),
    }
}

fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::CheckConfig => {
            println!("configuration is valid");
            println!("issuer:   {}", config.issuer);
            println!("listen:   {}", config.listen);
            println!(
                "database: {}",
                if config.database_url.is_some() { "(from database_url)".to_string() } else { config.database_url() }
            );
            match &config.plugins.dir {
                Some(dir) => println!("plugins:  {} (see `idp plugin list`)", dir.display()),
                None => println!("plugins:  none (plugins.dir not set)"),
            }
            for (name, up) in &config.upstreams {
                let trust = if up.trust_phone { ", trusts verified phones" } else { "" };
                println!("upstream: {name} = {} ({}{trust})", up.issuer, up.display_name);
                println!("          redirect URI to register there: {}/login/upstream/{name}/callback", config.issuer);
            }
            Ok(())
        }
        Command::Migrate => {
            let db = idp::store::connect(&config.database_url()).await?;
            idp::store::migrate(&db).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Serve { no_migrate, demo } => {
            let listen = config.listen.clone();
            let mut config = config;
            if demo
                && let Some(exe_dir) = std::env::current_exe()?.parent()
                && let Some(found) = idp::demo::demo_plugins(&mut config, exe_dir)?
            {
                eprintln!("demo plugins: {} (from {})", found.names.join(", "), found.dir.display());
                if let Some(token) = found.admin_token {
                    eprintln!("  plugin admin token (bearer, /plugins/*/admin) — shown once: {token}");
                }
            }
            if demo {
                // Seed through a state without plugins: a plugin library
                // initialises once per process, so only the serving state
                // below may load it.
                let mut seeding = config.clone();
                seeding.plugins.dir = None;
                let seeder = idp::build_state(seeding, !no_migrate).await?;
                if let Some(seeded) = idp::demo::seed(&seeder).await? {
                    eprintln!("demo account created — shown once, keep it:");
                    eprintln!("  username: {}", seeded.username);
                    eprintln!("  password: {}", seeded.password);
                    eprintln!("  public client: {}", seeded.public_client);
                    eprintln!("  citizen app client (scan_login): {}", seeded.citizen_app);
                }
                if let Some(e) = idp::demo::seed_enterprise(&seeder).await? {
                    eprintln!("demo enterprise created — shown once, keep it:");
                    eprintln!("  enterprise: {} {} password: {}", e.uscc, e.name, e.password);
                    eprintln!("  legal representative: {} password: {}", e.representative.0, e.representative.1);
                    eprintln!("  approved agent: {} password: {}", e.agent.0, e.agent.1);
                }
            }
            let state = idp::build_state(config.clone(), !no_migrate && !demo).await?;
            let listener = tokio::net::TcpListener::bind(&listen).await?;
            tracing::info!("idp listening on {listen}, issuer {}", state.config.issuer);
            if state.demo.is_some() {
                tracing::info!("demo relying party: {}/demo", state.config.issuer);
            }
            idp::serve(state, listener).await
        }
        Command::Client { cmd } => client_cmd(cmd, config).await,
        Command::User { cmd } => user_cmd(cmd, config).await,
        Command::Keys { cmd } => keys_cmd(cmd, config).await,
        Command::Plugin { cmd } => plugin_cli::run(cmd, config).await,
        Command::Identity { cmd } => identity_cli::run(cmd, config).await,
        Command::Appeal { cmd } => appeal_cmd(cmd, config).await,
        Command::Kin { cmd } => kin_cli::run(cmd, config).await,
        Command::Enterprise { cmd } => enterprise_cmd(cmd, config).await,
        Command::Staff { cmd } => staff_cli::run(cmd, config).await,
        Command::Dev { cmd: DevCmd::Seed { accounts, client_id, password } } => {
            let state = idp::build_state(config, true).await?;
            if state.clients.find(&client_id).await?.is_none() {
                anyhow::bail!("no client {client_id}: create it first (idp client create)");
            }
            let password_hash = state.passwords.hash(password).await?;
            let started = std::time::Instant::now();
            let seed = idp::store::seed::Seed {
                accounts,
                client_id: &client_id,
                password_hash: &password_hash,
                now: state.clock.now(),
            };
            idp::store::seed::seed(&state.store, &seed).await?;
            idp::store::seed::analyze(&state.store).await?;
            println!("{accounts} accounts with sessions, grants and refresh tokens in {:.1?}", started.elapsed());
            Ok(())
        }
        Command::Audit { cmd } => audit_cli::run(cmd, config).await,
        Command::Dev { cmd: DevCmd::Messages { to, channel, limit, json } } => {
            let state = idp::build_state(config, true).await?;
            let channel = (channel != "all").then_some(channel.as_str());
            let rows = idp::ports::sms::dev_messages(&state.store, channel, to.as_deref(), limit).await?;
            if json {
                print_json(&rows)
            } else {
                for m in rows {
                    println!("{}\t{}\t{}\t{}\t{}", m.created_at, m.channel, m.recipient, m.purpose, m.body);
                }
                Ok(())
            }
        }
    }
}

/// `--logo-uri` and `--display-name LANG=NAME` as branding (checked by the core).
fn branding_args(
    logo_uri: Option<String>,
    display_names: &[String],
) -> anyhow::Result<idp::domain::clients::branding::Branding> {
    let mut b = idp::domain::clients::branding::Branding { logo_uri, ..Default::default() };
    for d in display_names {
        let (lang, name) = d
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--display-name `{d}`: use LANG=NAME, e.g. en=Tax Office"))?;
        b.names.insert(lang.trim().to_string(), name.trim().to_string());
    }
    Ok(b)
}

async fn client_cmd(cmd: ClientCmd, config: Config) -> anyhow::Result<()> {
    let state = idp::build_state(config, true).await?;
    match cmd {
        ClientCmd::Create {
            name,
            client_id,
            redirect_uris,
            post_logout_redirect_uris,
            public,
            auth_method,
            id_token_alg,
            jwks,
            grant_types,
            scope,
            backchannel_logout_uri,
            backchannel_token_delivery_mode,
            backchannel_client_notification_endpoint,
            skip_consent,
            min_acr,
            profile,
            require_par,
            dpop,
            tls_bound,
            tls,
            subject_type,
            sector_identifier_uri,
            logo_uri,
            display_names,
            json,
        } => {
            let min_level = match min_acr {
                Some(v) => Some(
                    v.parse::<u8>()
                        .ok()
                        .or_else(|| idp::domain::assurance::parse_acr(&state.config.acr_prefix, &v))
                        .filter(|l| (1..=4).contains(l))
                        .ok_or_else(|| {
                            anyhow::anyhow!("--min-acr `{v}`: allowed 1–4 or {}1 … 4", state.config.acr_prefix)
                        })?,
                ),
                None => None,
            };
            let auth_method = match auth_method {
                Some(m) => Some(AuthMethod::parse(&m).ok_or_else(|| {
                    anyhow::anyhow!(
                        "--auth-method `{m}`: allowed client_secret_basic, client_secret_post, private_key_jwt, \
                         tls_client_auth, self_signed_tls_client_auth, none"
                    )
                })?),
                None => None,
            };
            let jwks = match jwks {
                Some(j) => Some(serde_json::from_str(&j).map_err(|e| anyhow::anyhow!("--jwks is not JSON: {e}"))?),
                None => None,
            };
            let created = state
                .clients
                .create(NewClient {
                    name,
                    client_id,
                    public: public || auth_method == Some(AuthMethod::None),
                    auth_method,
                    redirect_uris,
                    post_logout_redirect_uris,
                    grant_types: (!grant_types.is_empty()).then_some(grant_types),
                    scopes: scope,
                    id_token_alg,
                    jwks,
                    backchannel_logout_uri,
                    backchannel_token_delivery_mode,
                    backchannel_client_notification_endpoint,
                    skip_consent,
                    min_level,
                    profile,
                    require_par,
                    dpop_bound: dpop,
                    tls_bound,
                    subject_type,
                    sector_identifier_uri,
                    metadata: {
                        let mut meta = tls.metadata().unwrap_or_default();
                        let b = branding_args(logo_uri, &display_names)?;
                        idp::domain::clients::branding::into_metadata(&mut meta, &b);
                        Some(meta)
                    },
                })
                .await?;
            if json {
                print_json(&created)
            } else {
                println!("client_id:     {}", created.client.client_id);
                if let Some(s) = &created.client_secret {
                    println!("client_secret: {s}   (shown once)");
                }
                Ok(())
            }
        }
        ClientCmd::Update { client_id, auth_method, tls_bound, tls } => {
            let auth_method = match auth_method {
                Some(m) => Some(AuthMethod::parse(&m).filter(|m| m.is_mtls()).ok_or_else(|| {
                    anyhow::anyhow!("--auth-method `{m}`: allowed tls_client_auth, self_signed_tls_client_auth")
                })?),
                None => None,
            };
            use idp::domain::clients::admin::MtlsUpdate;
            let settings =
                idp::domain::clients::admin::MtlsSettings { auth_method, subject: tls.metadata(), bound: tls_bound };
            let admin = idp::domain::audit::Actor::Operator("admin");
            match state.clients.update_mtls(&client_id, &settings, admin).await? {
                MtlsUpdate::Done => {
                    println!("updated {client_id}");
                    Ok(())
                }
                MtlsUpdate::NoSuchApp => anyhow::bail!("no client `{client_id}`"),
                MtlsUpdate::Refused(key) => anyhow::bail!("{}", state.pages.text("en", key)),
            }
        }
        ClientCmd::List { json } => {
            let list = state.clients.list().await?;
            if json {
                print_json(&list)
            } else {
                for c in list {
                    println!("{}\t{}\t{}", c.client_id, c.auth_method.as_str(), c.name);
                }
                Ok(())
            }
        }
        ClientCmd::Show { client_id } => match state.clients.find(&client_id).await? {
            Some(c) => print_json(&c),
            None => anyhow::bail!("no client `{client_id}`"),
        },
        ClientCmd::Brand { client_id, logo_uri, display_names } => {
            let b = branding_args(logo_uri, &display_names)?;
            if let Err(key) = idp::domain::clients::branding::check(&b) {
                anyhow::bail!("{}", state.pages.text("en", key));
            }
            let by = idp::domain::audit::Actor::Operator("admin");
            if state.clients.set_branding(&client_id, &b, by).await? {
                println!("branding of {client_id} saved");
                Ok(())
            } else {
                anyhow::bail!("no client `{client_id}`")
            }
        }
        ClientCmd::AllowScope { client_id, scope } => plugin_cli::allow_scope(&state, &client_id, &scope).await,
        ClientCmd::DenyScope { client_id, scope } => plugin_cli::deny_scope(&state, &client_id, &scope).await,
        ClientCmd::InitialToken { uses, ttl, label, json } => {
            let now = state.clock.now();
            let t = idp::domain::clients::registration::issue_initial_token(
                &state.store,
                &state.hasher,
                &label,
                uses,
                ttl,
                now,
            )
            .await?;
            if json {
                print_json(&serde_json::json!({
                    "id": t.id, "initial_access_token": t.token, "uses": t.uses, "expires_at": t.expires_at,
                }))
            } else {
                println!("initial_access_token: {}   (shown once)", t.token);
                println!("id: {}  uses: {}  expires_at: {}", t.id, t.uses, t.expires_at);
                Ok(())
            }
        }
        ClientCmd::Delete { client_id } => {
            if state.clients.delete(&client_id).await? {
                println!("deleted {client_id}");
                Ok(())
            } else {
                anyhow::bail!("no client `{client_id}`")
            }
        }
    }
}

async fn user_cmd(cmd: UserCmd, config: Config) -> anyhow::Result<()> {
    let state = idp::build_state(config, true).await?;
    match cmd {
        UserCmd::Create { username, password, phone, email, name, id_number, json } => {
            let created = state.users.create(NewUser { username, password, phone, email, name, id_number }).await?;
            if json {
                print_json(&created)
            } else {
                println!("created {} (sub {})", created.username, created.sub);
                Ok(())
            }
        }
        UserCmd::List { json } => {
            let list = state.users.list().await?;
            if json {
                print_json(&list)
            } else {
                for u in list {
                    println!("{}\t{}\t{}", u.sub, u.username, u.phone.unwrap_or_default());
                }
                Ok(())
            }
        }
        UserCmd::SetOperator { login, revoke } => {
            identity_cli::run(identity_cli::IdentityCmd::SetOperator { login, revoke }, state.config.clone()).await
        }
        UserCmd::SetPassword { login, password } => {
            let now = state.clock.now();
            let (db, users, passwords) = (&state.store, &state.users, &state.passwords);
            if idp::domain::identity::changes::set_password(db, users, passwords, &state, &login, &password, "cli", now)
                .await?
            {
                println!("password changed; sessions and tokens of {login} revoked");
                Ok(())
            } else {
                anyhow::bail!("no account `{login}`")
            }
        }
    }
}

async fn keys_cmd(cmd: KeysCmd, config: Config) -> anyhow::Result<()> {
    let state = idp::build_state(config, true).await?;
    match cmd {
        KeysCmd::List { json } => {
            let rows = idp::crypto::keys::KeyRing::list(&state.store).await?;
            let list: Vec<serde_json::Value> = rows
                .iter()
                .map(|k| serde_json::json!({ "kid": k.kid, "alg": k.alg, "purpose": k.purpose, "active": k.active, "created_at": k.created_at, "retired_at": k.retired_at }))
                .collect();
            if json {
                print_json(&list)
            } else {
                for k in rows {
                    println!("{}\t{}\t{}\t{}", k.kid, k.alg, k.purpose, if k.active { "active" } else { "retired" });
                }
                Ok(())
            }
        }
        KeysCmd::Rotate { json } => {
            let created = state.keys.rotate(&state.store).await?;
            if json {
                print_json(&created)
            } else {
                println!("new active keys: {}", created.join(", "));
                println!("previous keys stay published for {} s", state.config.tokens.retired_key_publish);
                Ok(())
            }
        }
    }
}

async fn appeal_cmd(cmd: AppealCmd, config: Config) -> anyhow::Result<()> {
    use idp::domain::identity::appeals;
    let state = idp::build_state(config, true).await?;
    let now = state.clock.now();
    let (id, approve, reason, operator) = match cmd {
        AppealCmd::List { status, json } => {
            let list = appeals::list(&state.store, (status != "all").then_some(status.as_str())).await?;
            if json {
                return print_json(&list);
            }
            for a in list {
                println!("{}\t{}\t{}\t{}\t{}\t{}", a.id, a.status, a.kind, a.claimed_value, a.contact_phone, a.details);
            }
            return Ok(());
        }
        AppealCmd::Approve { id, operator } => (id, true, String::new(), operator),
        AppealCmd::Reject { id, reason, operator } => {
            if reason.trim().is_empty() {
                anyhow::bail!("--reason must say why, the appellant receives it");
            }
            (id, false, reason, operator)
        }
    };
    let Some(decided) = appeals::decide(&state.store, &id, approve, &reason, Actor::Operator(&operator), now).await?
    else {
        anyhow::bail!("no pending appeal `{id}`");
    };
    let key = if approve { "sms_appeal_approved" } else { "sms_appeal_rejected" };
    let mut with_reason = decided.clone();
    with_reason.reason = Some(reason.clone());
    let text = appeals::outcome_text(&state.pages.text(&state.config.default_locale, key), &with_reason);
    announce_decision(&state, &decided.id, &decided.contact_phone, &reason, text, "appellant", now).await?;
    println!("appeal {id} {}", if approve { "approved" } else { "rejected" });
    Ok(())
}

/// Tells the person on `phone` by SMS of a staff decision on `id` (the
/// decision audited itself); a failed SMS leaves the decision standing.
async fn announce_decision(
    state: &idp::server::AppState,
    id: &str,
    phone: &str,
    reason: &str,
    text: String,
    whom: &str,
    now: i64,
) -> anyhow::Result<()> {
    let msg = idp::ports::sms::SmsMessage {
        phone: phone.to_string(),
        purpose: idp::ports::sms::SmsPurpose::Notice,
        params: serde_json::json!({ "id": id, "reason": reason }),
        text,
    };
    if let Err(e) = state.sms_codes.gateway().send(&msg, now).await {
        eprintln!("decision saved, but the SMS to the {whom} failed: {e}");
    }
    Ok(())
}

/// The enterprise of `--uscc` and the account of `--agent`.
async fn enterprise_and_account(
    state: &idp::server::AppState,
    uscc: &str,
    agent: &str,
) -> anyhow::Result<(idp::store::entities::enterprise::Model, idp::store::entities::user::Model)> {
    let uscc = idp::domain::delegation::uscc::Uscc::parse(uscc).map_err(|e| anyhow::anyhow!("--uscc: {e}"))?;
    let e = idp::domain::delegation::enterprises::find_by_uscc(&state.store, uscc.as_str())
        .await?
        .ok_or_else(|| anyhow::anyhow!("no enterprise with credit code {}", uscc.as_str()))?;
    let u = state.users.find_by_login(agent).await?.ok_or_else(|| anyhow::anyhow!("no account `{agent}`"))?;
    Ok((e, u))
}

async fn enterprise_cmd(cmd: EnterpriseCmd, config: Config) -> anyhow::Result<()> {
    use idp::domain::delegation::enterprises;
    let state = idp::build_state(config, true).await?;
    let now = state.clock.now();
    let (id, approve, reason, operator) = match cmd {
        EnterpriseCmd::Create {
            uscc,
            name,
            region,
            representative_name,
            representative_id,
            representative_doc_type,
            representative_phone,
            password,
            operator,
        } => {
            let new = enterprises::NewEnterprise {
                uscc: idp::domain::delegation::uscc::Uscc::parse(&uscc).map_err(|e| anyhow::anyhow!("--uscc: {e}"))?,
                name,
                region,
                representative_name,
                representative_id_number: idp::domain::identity::documents::DocumentNumber::parse_any(
                    representative_doc_type.as_deref(),
                    &representative_id,
                )
                .map_err(|e| anyhow::anyhow!("--representative-id: {}", state.pages.text("en", e.key())))?,
                representative_phone: idp::domain::identity::users::PhoneNumber::parse(&representative_phone)
                    .map_err(|e| anyhow::anyhow!("--representative-phone: {e}"))?,
                password,
            };
            let e = enterprises::create(&state.store, &state.passwords, new, &operator, now).await?;
            println!("{}", e.id);
            if e.representative_user_id.is_none() {
                eprintln!(
                    "note: no account has the representative's name and ID number yet; it links on first sign-in"
                );
            }
            return Ok(());
        }
        EnterpriseCmd::AddAgent { uscc, agent, approved, operator } => {
            let (e, u) = enterprise_and_account(&state, &uscc, &agent).await?;
            let d = match enterprises::add_agent(&state.store, &e.id, &u.id, Actor::Operator(&operator), now).await? {
                Ok(d) => d,
                Err(key) => anyhow::bail!("{}", state.pages.text("en", key)),
            };
            let party = idp::domain::delegation::Party::Enterprise(&e.id);
            if approved && !idp::domain::delegation::activate(&state.store, &d.id, &party, None, now).await? {
                anyhow::bail!("the agent grant {} changed meanwhile", d.id);
            }
            println!("{}", d.id);
            return Ok(());
        }
        EnterpriseCmd::AgentPassword { uscc, agent, password, operator } => {
            let (e, u) = enterprise_and_account(&state, &uscc, &agent).await?;
            let d = idp::domain::delegation::agent_delegation(&state.store, &e.id, &u.id)
                .await?
                .filter(|d| {
                    use idp::domain::delegation::DelegationState::{Active, Pending};
                    idp::domain::delegation::DelegationState::is_any(d, &[Pending, Active])
                })
                .ok_or_else(|| anyhow::anyhow!("`{agent}` is no pending or active agent of {}", e.uscc))?;
            match idp::domain::delegation::agent_password::reset(
                &state.store,
                &state.passwords,
                &state,
                &d,
                &password,
                Actor::Operator(&operator),
                None,
                now,
            )
            .await
            {
                Ok(true) => {}
                Ok(false) => anyhow::bail!("the agent grant {} changed meanwhile", d.id),
                Err(enterprises::EnterpriseError::Invalid(key)) => anyhow::bail!("{}", state.pages.text("en", key)),
                Err(err) => return Err(err.into()),
            }
            println!("password set; sessions and tokens of agent {} for {} ended", d.id, e.uscc);
            return Ok(());
        }
        EnterpriseCmd::Requests { status, json } => {
            let list = enterprises::changes(&state.store, (status != "all").then_some(status.as_str())).await?;
            if json {
                return print_json(&list);
            }
            for c in list {
                println!("{}\t{}\t{}\t{}\t{}\t{}", c.id, c.status, c.kind, c.enterprise_id, c.new_name, c.new_phone);
            }
            return Ok(());
        }
        EnterpriseCmd::Approve { id, operator } => (id, true, String::new(), operator),
        EnterpriseCmd::Reject { id, reason, operator } => {
            if reason.trim().is_empty() {
                anyhow::bail!("--reason must say why");
            }
            (id, false, reason, operator)
        }
    };
    let Some(decided) =
        enterprises::decide_change(&state.store, &id, approve, &reason, Actor::Operator(&operator), now).await?
    else {
        anyhow::bail!("no pending change request `{id}`");
    };
    // The applicant hears the outcome on the phone given in the request.
    let key = if approve { "sms_enterprise_change_approved" } else { "sms_enterprise_change_rejected" };
    let text = enterprises::change_outcome_text(&state.pages.text(&state.config.default_locale, key), &decided);
    announce_decision(&state, &decided.id, &decided.new_phone, &reason, text, "applicant", now).await?;
    println!("change request {id} {}", if approve { "approved" } else { "rejected" });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Generated ids are base64url and may start with `-`; operators paste
    /// them as they are (an appeal or change request id, a client id).
    #[test]
    fn ids_starting_with_a_hyphen_are_values() {
        for args in [
            &["idp", "enterprise", "reject", "-jsDhznD5PB8F-WV", "--reason", "x"][..],
            &["idp", "enterprise", "approve", "-jsDhznD5PB8F-WV"],
            &["idp", "appeal", "approve", "-a1"],
            &["idp", "client", "show", "-c1"],
        ] {
            assert!(Cli::try_parse_from(args).is_ok(), "{args:?}");
        }
    }
}
