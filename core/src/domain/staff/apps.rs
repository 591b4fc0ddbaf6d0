//! Apps in the console (G1): each call checks the role (an app admin only
//! touches the apps assigned) and then calls the `domain::clients` use case.
use super::{Permission, Staff, StaffError};
use crate::domain::audit::Event;
use crate::domain::clients::admin::{self, Settings};
use crate::domain::clients::{Client, ClientService, CreatedClient, NewClient};
use crate::domain::plugins::plugin_access;
use crate::store::Store;

/// The apps this staff member may see.
pub async fn list(clients: &ClientService, staff: &Staff) -> Result<Vec<Client>, StaffError> {
    staff.require(Permission::ViewApps)?;
    let all = clients.list().await?;
    let everything = staff.has(super::Role::PlatformAdmin) || staff.has(super::Role::Auditor);
    Ok(all.into_iter().filter(|c| everything || staff.can(Permission::ManageApp(&c.client_id))).collect())
}

/// One app, if this staff member may see it.
pub async fn show(clients: &ClientService, staff: &Staff, client_id: &str) -> Result<Client, StaffError> {
    staff.require(Permission::ViewApps)?;
    if !(staff.can(Permission::ManageApp(client_id)) || staff.has(super::Role::Auditor)) {
        return Err(StaffError::Forbidden);
    }
    clients.find(client_id).await?.ok_or(StaffError::NotFound)
}

/// Registers an app (platform admins). The secret comes back once.
pub async fn create(
    db: &Store,
    clients: &ClientService,
    staff: &Staff,
    s: &Settings,
    now: i64,
) -> Result<CreatedClient, StaffError> {
    staff.require(Permission::CreateApps)?;
    admin::check(s).map_err(StaffError::Invalid)?;
    let new = NewClient {
        name: s.name.trim().to_string(),
        redirect_uris: s.redirect_uris.clone(),
        post_logout_redirect_uris: s.post_logout_redirect_uris.clone(),
        scopes: Some(s.allowed_scopes.split_whitespace().collect::<Vec<_>>().join(" ")),
        skip_consent: s.skip_consent,
        min_level: s.min_level,
        ..Default::default()
    };
    let created = clients.create(new).await?;
    let subject = format!("client:{}", created.client.client_id);
    crate::domain::audit::record(db, Event::new("staff_app_created", staff.actor(), &subject), now).await?;
    Ok(created)
}

pub async fn update(clients: &ClientService, staff: &Staff, client_id: &str, s: &Settings) -> Result<(), StaffError> {
    staff.require(Permission::ManageApp(client_id))?;
    admin::check(s).map_err(StaffError::Invalid)?;
    if clients.update_settings(client_id, s, staff.actor()).await? { Ok(()) } else { Err(StaffError::NotFound) }
}

pub async fn rotate_secret(clients: &ClientService, staff: &Staff, client_id: &str) -> Result<String, StaffError> {
    staff.require(Permission::ManageApp(client_id))?;
    clients.rotate_secret(client_id, staff.actor()).await?.ok_or(StaffError::NotFound)
}

/// Disables or enables an app (platform admin or its app admin).
pub async fn set_disabled(
    clients: &ClientService,
    staff: &Staff,
    client_id: &str,
    disabled: bool,
) -> Result<(), StaffError> {
    staff.require(Permission::ManageApp(client_id))?;
    if clients.set_disabled(client_id, disabled, staff.actor()).await? { Ok(()) } else { Err(StaffError::NotFound) }
}

/// Grants or revokes a plugin scope of an app at once (platform admin or its
/// app admin). `known` are the scopes of the loaded plugins: anything else
/// is refused. Audited (`client_scope_allowed` / `client_scope_denied`)
/// with the staff member as actor.
#[allow(clippy::too_many_arguments)]
pub async fn plugin_scope(
    db: &Store,
    clients: &ClientService,
    staff: &Staff,
    client_id: &str,
    scope: &str,
    allow: bool,
    known: &[String],
    now: i64,
) -> Result<(), StaffError> {
    staff.require(Permission::ManageApp(client_id))?;
    if !known.iter().any(|k| k == scope) {
        return Err(StaffError::Invalid("admin_app_scope_rule"));
    }
    clients.find(client_id).await?.ok_or(StaffError::NotFound)?;
    if allow {
        plugin_access::allow_as(db, staff.actor(), client_id, scope, now).await?;
    } else {
        plugin_access::deny_as(db, staff.actor(), client_id, scope, now).await?;
    }
    Ok(())
}

/// Replaces the keys of a `private_key_jwt` (or `self_signed_tls_client_auth`)
/// app with the JWK Set typed in the console (platform admin or its app admin).
pub async fn set_jwks(clients: &ClientService, staff: &Staff, client_id: &str, text: &str) -> Result<(), StaffError> {
    staff.require(Permission::ManageApp(client_id))?;
    let app = clients.find(client_id).await?.ok_or(StaffError::NotFound)?;
    use crate::domain::clients::AuthMethod;
    if !matches!(app.auth_method, AuthMethod::PrivateKeyJwt | AuthMethod::SelfSignedTlsClientAuth) {
        return Err(StaffError::Invalid("admin_app_jwks_not_key_auth"));
    }
    let jwks = admin::check_jwks(text).map_err(StaffError::Invalid)?;
    if clients.set_jwks(client_id, &jwks, staff.actor()).await? { Ok(()) } else { Err(StaffError::NotFound) }
}

/// Sets an app's logo and localized display names (platform admin or its
/// app admin); the one branding rule of `clients::branding`.
pub async fn set_branding(
    clients: &ClientService,
    staff: &Staff,
    client_id: &str,
    b: &crate::domain::clients::branding::Branding,
) -> Result<(), StaffError> {
    staff.require(Permission::ManageApp(client_id))?;
    crate::domain::clients::branding::check(b).map_err(StaffError::Invalid)?;
    if clients.set_branding(client_id, b, staff.actor()).await? { Ok(()) } else { Err(StaffError::NotFound) }
}

/// Changes how an app authenticates at the token endpoint, with its keys
/// for `private_key_jwt` (platform admin or its app admin). A new secret,
/// when one is issued, comes back once.
pub async fn set_auth(
    clients: &ClientService,
    staff: &Staff,
    client_id: &str,
    a: &admin::KeyAuth,
) -> Result<Option<String>, StaffError> {
    staff.require(Permission::ManageApp(client_id))?;
    let app = clients.find(client_id).await?.ok_or(StaffError::NotFound)?;
    admin::check_auth(&app, a).map_err(StaffError::Invalid)?;
    clients.set_auth(client_id, a, staff.actor()).await?.ok_or(StaffError::NotFound)
}

/// Changes how an app uses mutual TLS (RFC 8705): the certificate methods,
/// the registered certificate subject and certificate-bound tokens
/// (platform admin or its app admin); the rules are
/// `ClientService::update_mtls`, the same as the CLI's.
pub async fn set_mtls(
    clients: &ClientService,
    staff: &Staff,
    client_id: &str,
    s: &admin::MtlsSettings,
) -> Result<(), StaffError> {
    staff.require(Permission::ManageApp(client_id))?;
    match clients.update_mtls(client_id, s, staff.actor()).await? {
        admin::MtlsUpdate::Done => Ok(()),
        admin::MtlsUpdate::NoSuchApp => Err(StaffError::NotFound),
        admin::MtlsUpdate::Refused(key) => Err(StaffError::Invalid(key)),
    }
}
