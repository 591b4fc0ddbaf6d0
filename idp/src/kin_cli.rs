//! `idp kin …`: the operators' queue of reported kin bindings,
//! built like `idp appeal list|approve|reject`: list, then decide one by
//! id. Removing unbinds at once and tells the binder and the reporter.
use clap::Subcommand;
use idp::config::Config;
use idp::domain::audit::Actor;
use idp::domain::delegation::kin::Notices;
use idp::domain::delegation::kin_reports;

#[derive(Subcommand)]
pub enum KinCmd {
    /// Reports waiting for review (or all with --status all).
    Reports {
        #[arg(long, default_value = "pending")]
        status: String,
        #[arg(long)]
        json: bool,
    },
    /// Decide a report: --remove unbinds the reported binding, --dismiss keeps it.
    ReportDecide {
        /// Generated ids may start with `-`.
        #[arg(allow_hyphen_values = true)]
        id: String,
        #[arg(long, conflicts_with = "dismiss", required_unless_present = "dismiss")]
        remove: bool,
        #[arg(long)]
        dismiss: bool,
        #[arg(long, default_value = "operator")]
        operator: String,
    },
}

pub async fn run(cmd: KinCmd, config: Config) -> anyhow::Result<()> {
    let state = idp::build_state(config, true).await?;
    let now = state.clock.now();
    match cmd {
        KinCmd::Reports { status, json } => {
            let list = kin_reports::list(&state.store, (status != "all").then_some(status.as_str())).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
                return Ok(());
            }
            for r in list {
                let id_masked = idp::domain::authn::flows::mask_id_number(&r.relative_id_number);
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    r.id, r.status, r.delegation_id, id_masked, r.reporter_user_id, r.reason
                );
            }
            Ok(())
        }
        KinCmd::ReportDecide { id, remove, dismiss: _, operator } => {
            let text = |key: &str| state.pages.text(&state.config.default_locale, key);
            let notices = Notices { sms: state.sms_codes.gateway(), text: &text };
            let Some(decided) =
                kin_reports::decide(&state.store, &notices, &id, remove, Actor::Operator(&operator), now).await?
            else {
                anyhow::bail!("no pending kin report `{id}`");
            };
            let what = match (remove, decided.unbound.is_some()) {
                (true, true) => "removed: the binding is ended",
                (true, false) => "removed: the binding had already ended",
                (false, _) => "dismissed",
            };
            println!("kin report {id} {what}");
            Ok(())
        }
    }
}
