//! `idp identity …` and `idp user set-operator`: bootstrap the first counter
//! operator and record an in-person (L4) verification from the command
//! line (audited as `cli`), print sandbox chip-reader assertions for
//! demos, and list the verification record.
use clap::{Args, Subcommand};
use idp::config::Config;
use idp::domain::identity::documents::{Document, DocumentForm};
use idp::domain::identity::{self, BindOutcome, Binder, CounterClerk};
use idp::ports::verifier::Verifier;

#[derive(Args)]
pub struct DocumentArgs {
    /// resident_id, hk_macau_travel_permit, taiwan_travel_permit,
    /// foreign_permanent_resident_id, passport, military_officer_id,
    /// hmt_residence_permit
    #[arg(long, default_value = "resident_id")]
    doc_type: String,
    #[arg(long)]
    name: String,
    #[arg(long)]
    number: String,
    /// YYYY-MM-DD
    #[arg(long)]
    valid_from: String,
    /// YYYY-MM-DD; omit with --long-term
    #[arg(long, default_value = "")]
    valid_to: String,
    #[arg(long)]
    long_term: bool,
}

impl DocumentArgs {
    fn form(&self) -> DocumentForm {
        DocumentForm {
            doc_type: self.doc_type.clone(),
            name: self.name.clone(),
            number: self.number.clone(),
            valid_from: self.valid_from.clone(),
            valid_to: self.valid_to.clone(),
            long_term: self.long_term.then(|| "on".into()),
        }
    }
}

#[derive(Subcommand)]
pub enum IdentityCmd {
    /// Allow (or with --revoke, forbid) an account to record counter
    /// verifications at /admin/in-person (its own session must be at L4).
    SetOperator {
        login: String,
        #[arg(long)]
        revoke: bool,
    },
    /// Record a counter (in-person, L4) verification: the person and the
    /// original document were seen at --place. Audited as `cli`.
    InPerson {
        /// Username, phone or ID number of the account.
        login: String,
        #[command(flatten)]
        doc: DocumentArgs,
        #[arg(long)]
        place: String,
    },
    /// Print an in-person assertion signed by the sandbox chip reader (only
    /// with `verifier.kind = "sandbox"`), to paste at /identity/in-person.
    SandboxAssertion {
        #[command(flatten)]
        doc: DocumentArgs,
        #[arg(long, default_value = "sandbox counter")]
        place: String,
    },
    /// The verification record (masked), newest first.
    Verifications {
        #[arg(long)]
        login: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u64,
    },
}

pub async fn run(cmd: IdentityCmd, config: Config) -> anyhow::Result<()> {
    let state = idp::build_state(config, true).await?;
    let now = state.clock.now();
    let today = chrono::DateTime::from_timestamp(now + 8 * 3600, 0).map(|d| d.date_naive()).unwrap_or_default();
    let find = |login: String| {
        let state = state.clone();
        async move { state.users.find_by_login(&login).await?.ok_or_else(|| anyhow::anyhow!("no account `{login}`")) }
    };
    match cmd {
        IdentityCmd::SetOperator { login, revoke } => {
            let u = find(login.clone()).await?;
            // Audited by the use case, in its transaction.
            identity::set_operator(&state.store, &u.id, !revoke, "cli", now).await?;
            println!("{login}: {}", if revoke { "no longer an operator" } else { "operator" });
            Ok(())
        }
        IdentityCmd::InPerson { login, doc, place } => {
            let u = find(login.clone()).await?;
            let doc = Document::parse(&doc.form(), today)
                .map_err(|e| anyhow::anyhow!("{}", state.pages.text("en", e.key())))?;
            // The same use case as the admin page: a displaced account's
            // sessions end (back-channel logout is best effort from a
            // short-lived CLI) and its phone is told.
            let binder = Binder { user: &u, keep_sid: None, ip: None, now };
            match identity::record_counter(&state.store, &state, CounterClerk::Cli, &binder, &doc, &place).await? {
                BindOutcome::Done { level, displaced, .. } => {
                    if let Some(old) = displaced {
                        println!("note: account {} held this identity and lost it", old.moved.from_user);
                    }
                    println!("{login}: identity bound at L{level}");
                    Ok(())
                }
                other => anyhow::bail!("not recorded: {other:?}"),
            }
        }
        IdentityCmd::SandboxAssertion { doc, place } => {
            let Verifier::Sandbox(sandbox) = &state.verifier else {
                anyhow::bail!("only the sandbox verifier has a reader key; real readers sign their own");
            };
            let claims = serde_json::json!({
                "jti": idp::crypto::random_token(12), "iat": now, "exp": now + 600,
                "doc_type": doc.doc_type, "number": doc.number, "name": doc.name,
                "valid_from": doc.valid_from, "valid_to": (!doc.long_term).then_some(doc.valid_to),
                "place": place,
            });
            println!("{}", sandbox.sign_assertion(claims));
            Ok(())
        }
        IdentityCmd::Verifications { login, limit } => {
            let user_id = match login {
                Some(login) => Some(find(login).await?.id),
                None => None,
            };
            for v in idp::domain::identity::verifications(&state.store, user_id.as_deref(), limit).await? {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    v.created_at,
                    v.user_id.unwrap_or_default(),
                    v.kind,
                    v.outcome,
                    v.subject,
                    v.reference.unwrap_or_default()
                );
            }
            Ok(())
        }
    }
}
