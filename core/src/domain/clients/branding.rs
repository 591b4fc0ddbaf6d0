//! Per-client branding (issues 15 and 19): the sign-in, consent and
//! second-step pages of an authorization request name the app asking, with
//! its logo, so a citizen knows who wants the sign-in.
//!
//! Both live in the registration's metadata under their RFC 7591 names:
//! `logo_uri`, and the display name per language as `client_name#<tag>`
//! (OIDC Registration §2.1, e.g. `client_name#en`); the app's `name` is the
//! name in the default language.
//!
//! The logo rule (one rule for the console, the admin API, the CLI and
//! dynamic registration): an absolute `https` URL without user information
//! or fragment, or a path on this server (`/static/…`); never plain `http`
//! (mixed content), `javascript:`, `data:` or any other scheme. A page that
//! shows a remote logo widens its CSP `img-src` to exactly that logo's
//! origin (`Client::logo_origin`); every other page keeps `'self' data:`.
//! Pages send no referrer, so a logo host learns nothing of the request.
use crate::domain::audit::{Actor, Event};
use crate::domain::clients::ClientService;
use crate::domain::error::DomainError;
use crate::store::entities::client;
use sea_orm::{ActiveModelTrait, EntityTrait, Set};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The metadata key of the logo (RFC 7591 §2).
pub const LOGO_URI: &str = "logo_uri";
/// The metadata key prefix of a localized display name (`client_name#en`).
pub const NAME_PREFIX: &str = "client_name#";
/// The longest display name, in characters.
pub const MAX_NAME: usize = 100;
const MAX_LOGO: usize = 2048;

/// The branding an operator sets.
#[derive(Debug, Clone, Default)]
pub struct Branding {
    pub logo_uri: Option<String>,
    /// Display names by language tag (`en`, `bo` …), besides the app's
    /// name in the default language.
    pub names: BTreeMap<String, String>,
}

/// Why a logo is refused (locale key), see the module's rule.
pub fn check_logo_uri(uri: &str) -> Result<(), &'static str> {
    const RULE: &str = "admin_app_logo_rule";
    if uri.is_empty() || uri.len() > MAX_LOGO || uri.chars().any(|c| c.is_control() || c.is_whitespace() || c == '\\') {
        return Err(RULE);
    }
    if let Some(rest) = uri.strip_prefix('/') {
        // A path on this server; `//host` would be another origin.
        return if rest.starts_with('/') { Err(RULE) } else { Ok(()) };
    }
    let u = url::Url::parse(uri).map_err(|_| RULE)?;
    let ok = u.scheme() == "https"
        && u.host_str().is_some_and(|h| !h.is_empty())
        && u.username().is_empty()
        && u.password().is_none()
        && u.fragment().is_none();
    if ok { Ok(()) } else { Err(RULE) }
}

/// Whether a language tag may carry a display name (`en`, `zh-CN`, `bo`).
fn valid_tag(tag: &str) -> bool {
    !tag.is_empty() && tag.len() <= 35 && tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// Why a display name is refused (locale key).
pub fn check_name(name: &str) -> Result<(), &'static str> {
    if name.trim().is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err("admin_app_display_name_rule");
    }
    Ok(())
}

/// Why branding is refused (locale key).
pub fn check(b: &Branding) -> Result<(), &'static str> {
    if let Some(logo) = &b.logo_uri {
        check_logo_uri(logo)?;
    }
    for (tag, name) in &b.names {
        if !valid_tag(tag) {
            return Err("admin_app_display_name_rule");
        }
        check_name(name)?;
    }
    Ok(())
}

/// The branding found in registered metadata, checked: `Err` names what is
/// wrong (for a registration's error description).
pub fn from_metadata(meta: &Map<String, Value>) -> Result<Branding, String> {
    let mut b = Branding::default();
    match meta.get(LOGO_URI) {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => b.logo_uri = Some(s.clone()),
        Some(_) => return Err("logo_uri must be a string".into()),
    }
    for (k, v) in meta {
        if let Some(tag) = k.strip_prefix(NAME_PREFIX) {
            let Some(name) = v.as_str() else {
                return Err(format!("{k} must be a string"));
            };
            b.names.insert(tag.to_string(), name.to_string());
        }
    }
    check(&b).map_err(|key| match key {
        "admin_app_logo_rule" => {
            "logo_uri must be an https URL (or a path on this server); http, javascript: and data: are refused"
                .to_string()
        }
        _ => format!("client_name#<language>: a language tag and a name of 1 to {MAX_NAME} characters"),
    })?;
    Ok(b)
}

/// Writes branding into metadata, replacing what was there.
pub fn into_metadata(meta: &mut Map<String, Value>, b: &Branding) {
    meta.remove(LOGO_URI);
    meta.retain(|k, _| !k.starts_with(NAME_PREFIX));
    if let Some(logo) = &b.logo_uri {
        meta.insert(LOGO_URI.into(), logo.clone().into());
    }
    for (tag, name) in &b.names {
        meta.insert(format!("{NAME_PREFIX}{tag}"), name.trim().to_string().into());
    }
}

/// The valid logo in registered metadata, if any.
pub(crate) fn logo_in(meta: &Map<String, Value>) -> Option<String> {
    meta.get(LOGO_URI).and_then(Value::as_str).filter(|u| check_logo_uri(u).is_ok()).map(str::to_string)
}

/// The display names by language tag in registered metadata.
pub(crate) fn names_in(meta: &Map<String, Value>) -> BTreeMap<String, String> {
    meta.iter().filter_map(|(k, v)| Some((k.strip_prefix(NAME_PREFIX)?.to_string(), v.as_str()?.to_string()))).collect()
}

impl super::Client {
    /// The origin of a remote logo (`https://host[:port]`), for the CSP of
    /// a page that shows it; none for a logo on this server or no logo.
    pub fn logo_origin(&self) -> Option<String> {
        let u = url::Url::parse(self.logo_uri.as_deref()?).ok()?;
        let origin = u.origin();
        origin.is_tuple().then(|| origin.ascii_serialization())
    }

    /// The name to show in `locale`: its localized name (same tag, or the
    /// same primary language), else the app's name.
    pub fn display_name(&self, locale: &str) -> String {
        let primary = |t: &str| t.split('-').next().unwrap_or("").to_ascii_lowercase();
        let names = &self.display_names;
        names
            .iter()
            .find(|(t, _)| t.eq_ignore_ascii_case(locale))
            .or_else(|| names.iter().find(|(t, _)| primary(t) == primary(locale)))
            .map(|(_, n)| n.clone())
            .unwrap_or_else(|| self.name.clone())
    }
}

impl ClientService {
    /// Replaces an app's logo and localized display names. `Ok(false)`: no
    /// such app. Audited with `by`; the cache forgets the app at once.
    pub async fn set_branding(&self, client_id: &str, b: &Branding, by: Actor<'_>) -> Result<bool, DomainError> {
        check(b).map_err(|k| DomainError::Internal(anyhow::anyhow!(k)))?;
        let txn = crate::store::begin_write(&self.db).await?;
        let Some(row) = client::Entity::find_by_id(client_id.to_owned()).one(&txn).await? else {
            return Ok(false);
        };
        let mut meta = match row.metadata.as_deref().and_then(|j| serde_json::from_str::<Value>(j).ok()) {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        into_metadata(&mut meta, b);
        let mut m: client::ActiveModel = row.into();
        m.metadata = Set((!meta.is_empty()).then(|| Value::Object(meta).to_string()));
        m.update(&txn).await?;
        let subject = format!("client:{client_id}");
        let detail = format!(
            "logo={} names={}",
            b.logo_uri.is_some(),
            b.names.keys().map(String::as_str).collect::<Vec<_>>().join(",")
        );
        crate::domain::audit::record(
            &txn,
            Event::new("client_branding_updated", by, &subject).detail(&detail),
            self.clock.now(),
        )
        .await?;
        txn.commit().await?;
        self.changed(client_id).await;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logo_rule() {
        assert!(check_logo_uri("https://rp.example/logo.png").is_ok());
        assert!(check_logo_uri("/static/logo.png").is_ok());
        for bad in [
            "http://rp.example/logo.png",
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "data:image/png;base64,AAAA",
            "//evil.example/x.png",
            "/\\evil.example/x.png",
            "https://u:p@rp.example/logo.png",
            "https://rp.example/logo.png#x",
            "https://rp.example/lo go.png",
            "ftp://rp.example/logo.png",
            "",
        ] {
            assert!(check_logo_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_from_metadata() {
        let mut meta = Map::new();
        meta.insert("client_name#en".into(), "Tax".into());
        meta.insert(LOGO_URI.into(), "https://rp.example/l.png".into());
        let b = from_metadata(&meta).unwrap();
        assert_eq!(b.names["en"], "Tax");
        meta.insert(LOGO_URI.into(), "http://rp.example/l.png".into());
        assert!(from_metadata(&meta).is_err());
        meta.insert(LOGO_URI.into(), "https://rp.example/l.png".into());
        meta.insert("client_name#e n".into(), "x".into());
        assert!(from_metadata(&meta).is_err());
    }
}
