//! `idp plugin …` and `idp client allow-scope|deny-scope`.
use clap::Subcommand;
use idp::config::Config;
use idp::domain::plugins::plugin_access;

#[derive(Subcommand)]
pub enum PluginCmd {
    /// Loaded plugins (scopes, health, enabled) and refused files with the reason.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Let a plugin's scopes and routes be used again.
    Enable { name: String },
    /// Stop a plugin at once on every node: its scopes are dropped from new
    /// and existing tokens' claims and its routes answer 404.
    Disable { name: String },
}

pub async fn run(cmd: PluginCmd, config: Config) -> anyhow::Result<()> {
    let state = idp::build_state(config, true).await?;
    match cmd {
        PluginCmd::List { json } => {
            let loaded = state.plugins.report().await?;
            let refused = state.plugins.refused();
            if json {
                let doc = serde_json::json!({ "loaded": loaded, "refused": refused });
                println!("{}", serde_json::to_string_pretty(&doc)?);
                return Ok(());
            }
            if loaded.is_empty() && refused.is_empty() {
                println!("no plugins (set plugins.dir or IDP_PLUGINS__DIR)");
            }
            for p in loaded {
                let scopes: Vec<&str> = p.scopes.iter().map(|s| s.name.as_str()).collect();
                println!(
                    "loaded   {} {}  file {}  scopes [{}]  {}  {}{}",
                    p.name,
                    p.version,
                    p.file,
                    scopes.join(" "),
                    if p.enabled { "enabled" } else { "DISABLED" },
                    if p.healthy { "healthy" } else { "UNHEALTHY" },
                    if p.optional { "  optional" } else { "" },
                );
                if let Some(e) = p.last_error {
                    println!("         last error: {e}");
                }
            }
            for r in refused {
                let name = r.name.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
                println!("refused  {}{name}: {}", r.file, r.reason);
            }
            Ok(())
        }
        PluginCmd::Enable { name } | PluginCmd::Disable { name } if state.plugins.find(&name).is_none() => {
            anyhow::bail!("no loaded plugin `{name}`")
        }
        PluginCmd::Enable { name } => {
            plugin_access::set_enabled(&state.store, &name, true, state.clock.now()).await?;
            println!("plugin {name} enabled");
            Ok(())
        }
        PluginCmd::Disable { name } => {
            plugin_access::set_enabled(&state.store, &name, false, state.clock.now()).await?;
            println!("plugin {name} disabled");
            Ok(())
        }
    }
}

pub async fn allow_scope(state: &idp::AppState, client_id: &str, scope: &str) -> anyhow::Result<()> {
    if state.clients.find(client_id).await?.is_none() {
        anyhow::bail!("no client `{client_id}`");
    }
    if idp::domain::clients::scopes::SUPPORTED.contains(&scope) {
        anyhow::bail!("`{scope}` is a core scope: set core scopes with `client create --scope`");
    }
    if idp::domain::clients::scopes::ADMIN_GRANTED.contains(&scope) {
        plugin_access::allow(&state.store, client_id, scope, state.clock.now()).await?;
        println!("client {client_id} may now request `{scope}`");
        return Ok(());
    }
    let Some(owner) = state.plugins.owner(scope) else {
        anyhow::bail!(
            "no loaded plugin declares scope `{scope}` (plugin scopes: {})",
            state.plugins.scope_names().join(" ")
        );
    };
    plugin_access::allow(&state.store, client_id, scope, state.clock.now()).await?;
    println!("client {client_id} may now request `{scope}` (plugin {})", owner.name());
    Ok(())
}

pub async fn deny_scope(state: &idp::AppState, client_id: &str, scope: &str) -> anyhow::Result<()> {
    if plugin_access::deny(&state.store, client_id, scope, state.clock.now()).await? {
        println!("client {client_id} may no longer request `{scope}`");
        Ok(())
    } else {
        anyhow::bail!("client `{client_id}` had no permission for `{scope}`")
    }
}
