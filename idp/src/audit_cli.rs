//! `idp audit verify`: recomputes the audit hash chain (G2) and exits
//! non-zero naming the first broken row. The console's auditor check
//! (`/admin/audit/verify`, `/admin/api/v1/audit/verify`) runs the same
//! core function; every check is itself audited.
use clap::Subcommand;
use idp::config::Config;
use idp::domain::audit::{self, Actor};

#[derive(Subcommand)]
pub enum AuditCmd {
    /// Recompute the hash chain; exit 1 naming the first broken row.
    Verify {
        #[arg(long)]
        json: bool,
        #[arg(long, default_value = "cli")]
        operator: String,
    },
}

pub async fn run(cmd: AuditCmd, config: Config) -> anyhow::Result<()> {
    let state = idp::build_state(config, true).await?;
    let now = state.clock.now();
    match cmd {
        AuditCmd::Verify { json, operator } => {
            let v = audit::verify_recorded(&state.store, Actor::Operator(&operator), None, now).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("chained rows: {}", v.rows);
                println!("rows before the chain: {}", v.legacy_rows);
                println!("head: seq {} hash {}", v.head_seq, v.head_hash);
            }
            match v.broken {
                None => {
                    if !json {
                        println!("audit chain verifies");
                    }
                    Ok(())
                }
                Some(b) => anyhow::bail!(
                    "audit chain broken at seq {} (row {}): {}",
                    b.seq,
                    b.id.as_deref().unwrap_or("-"),
                    b.reason.as_str()
                ),
            }
        }
    }
}
