//! Standard OIDC scopes and the claims each releases (OIDC Core §5.4).

/// `legal_person` (C4) releases the enterprise a delegated token speaks for.
pub const SUPPORTED: &[&str] = &["openid", "profile", "email", "phone", "address", "offline_access", "legal_person"];

/// D1: the citizen app's right to read and decide scan tickets.
pub const SCAN_LOGIN: &str = "scan_login";

/// Provider scopes no client has by default: an administrator permits them
/// per client (`idp client allow-scope`), like plugin scopes, and the
/// permission is checked again at token time and on every API call.
pub const ADMIN_GRANTED: &[&str] = &[SCAN_LOGIN];

pub fn claims_for_scope(scope: &str) -> &'static [&'static str] {
    match scope {
        "profile" => &[
            "name",
            "family_name",
            "given_name",
            "middle_name",
            "nickname",
            "preferred_username",
            "profile",
            "picture",
            "website",
            "gender",
            "birthdate",
            "zoneinfo",
            "locale",
            "updated_at",
        ],
        "email" => &["email", "email_verified"],
        "phone" => &["phone_number", "phone_number_verified"],
        "address" => &["address"],
        "legal_person" => &["legal_person"],
        _ => &[],
    }
}

/// OIDC Core §5.5: a claim asked for individually (the `claims` request
/// parameter) may be released only when a scope the client may have
/// releases it; anything else — an unknown name, a claim of a scope the
/// client lacks, a profile field no scope releases — is ignored. The user
/// still consents to it (`domain::clients::consents`).
pub fn releasable(claim: &str, allowed: &ScopeSet) -> bool {
    allowed.iter().any(|s| claims_for_scope(s).contains(&claim))
}

/// The claims a grant asked for individually for `target` (`id_token` or
/// `userinfo`), kept to those the client may still have released. The one
/// rule behind the ID token and userinfo, so both release the same.
pub fn individually_released(grant_claims: Option<&str>, target: &str, allowed: &ScopeSet) -> Vec<String> {
    grant_claims
        .and_then(|c| serde_json::from_str::<serde_json::Value>(c).ok())
        .and_then(|c| {
            c.get(target).and_then(serde_json::Value::as_object).map(|m| m.keys().cloned().collect::<Vec<_>>())
        })
        .unwrap_or_default()
        .into_iter()
        .filter(|c| releasable(c, allowed))
        .collect()
}

/// Every claim name we can release, for discovery.
pub fn all_claims() -> Vec<&'static str> {
    let mut out =
        vec!["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "azp", "sid", "at_hash", "act"];
    for s in SUPPORTED {
        out.extend_from_slice(claims_for_scope(s));
    }
    out
}

/// A space-separated scope string parsed into distinct values, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScopeSet(Vec<String>);

impl ScopeSet {
    pub fn parse(raw: &str) -> Self {
        let mut out: Vec<String> = Vec::new();
        for s in raw.split(' ').filter(|s| !s.is_empty()) {
            if !out.iter().any(|o| o == s) {
                out.push(s.to_string());
            }
        }
        Self(out)
    }
    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s == scope)
    }
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|s| s.as_str())
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn is_subset_of(&self, other: &ScopeSet) -> bool {
        self.0.iter().all(|s| other.contains(s))
    }
    /// Keeps only scopes the client may have; unknown ones are dropped as
    /// OIDC Core §3.1.2.1 asks ("scope values … not understood … SHOULD be ignored").
    pub fn retain_allowed(&self, allowed: &ScopeSet) -> ScopeSet {
        ScopeSet(self.0.iter().filter(|s| allowed.contains(s)).cloned().collect())
    }
    pub fn to_string_joined(&self) -> String {
        self.0.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn parse_dedups_and_ignores_extra_spaces() {
        let s = ScopeSet::parse("openid  email openid");
        assert_eq!(s.to_string_joined(), "openid email");
        assert!(ScopeSet::parse("email").is_subset_of(&s));
        assert!(!ScopeSet::parse("phone").is_subset_of(&s));
    }

    #[test]
    fn individually_released_claims_need_an_allowed_scope() {
        let allowed = ScopeSet::parse("openid email");
        let claims = r#"{"userinfo":{"email":null,"phone_number":null,"ethnicity":null,"acr":null}}"#;
        assert_eq!(individually_released(Some(claims), "userinfo", &allowed), vec!["email".to_string()]);
        assert!(individually_released(Some(claims), "id_token", &allowed).is_empty());
        assert!(individually_released(None, "userinfo", &allowed).is_empty());
    }
}
