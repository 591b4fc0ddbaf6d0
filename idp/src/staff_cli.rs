//! `idp staff`: the first platform admin (and any later role) from the
//! server's command line; the console's role page calls the same core use
//! cases (`domain::staff::grant` / `revoke`).
use clap::Subcommand;
use idp::config::Config;
use idp::domain::staff::{self, Granter, Role, StaffError};

#[derive(Subcommand)]
pub enum StaffCmd {
    /// Grant a role: platform_admin, app_admin (with --app), reviewer, auditor, counter_operator.
    Grant {
        /// Username, phone or ID number of the account.
        login: String,
        role: String,
        /// The app (client id) an app_admin manages.
        #[arg(long)]
        app: Option<String>,
        #[arg(long, default_value = "cli")]
        operator: String,
    },
    /// Revoke a role (every app of an app_admin unless --app names one).
    Revoke {
        login: String,
        role: String,
        #[arg(long)]
        app: Option<String>,
        #[arg(long, default_value = "cli")]
        operator: String,
    },
    /// Every staff role held.
    List {
        #[arg(long)]
        json: bool,
    },
}

fn role(s: &str) -> anyhow::Result<Role> {
    Role::parse(s).ok_or_else(|| {
        let all: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
        anyhow::anyhow!("unknown role `{s}`; one of {}", all.join(", "))
    })
}

fn explain(e: StaffError, login: &str) -> anyhow::Error {
    match e {
        StaffError::NotFound => anyhow::anyhow!("no account `{login}`"),
        StaffError::Invalid("admin_staff_app_required") => anyhow::anyhow!("app_admin needs --app <client_id>"),
        other => anyhow::anyhow!("{other}"),
    }
}

pub async fn run(cmd: StaffCmd, config: Config) -> anyhow::Result<()> {
    let state = idp::build_state(config, true).await?;
    let now = state.clock.now();
    match cmd {
        StaffCmd::Grant { login, role: r, app, operator } => {
            let r = role(&r)?;
            staff::grant(&state.store, &state.users, Granter::Cli(&operator), &login, r, app.as_deref(), now)
                .await
                .map_err(|e| explain(e, &login))?;
            println!("{login} is now {}", r.as_str());
        }
        StaffCmd::Revoke { login, role: r, app, operator } => {
            let r = role(&r)?;
            let removed =
                staff::revoke(&state.store, &state.users, Granter::Cli(&operator), &login, r, app.as_deref(), now)
                    .await
                    .map_err(|e| explain(e, &login))?;
            if removed {
                println!("{login} is no longer {}", r.as_str());
            } else {
                println!("{login} did not hold {}", r.as_str());
            }
        }
        StaffCmd::List { json } => {
            let rows = staff::list(&state.store).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for g in rows {
                    println!("{}\t{}\t{}\t{}", g.username, g.role, g.app_id, g.granted_by);
                }
            }
        }
    }
    Ok(())
}
