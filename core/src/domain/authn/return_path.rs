//! Where a provider page may send the browser back to when it is done (the
//! D2 face check returning to a plugin's page): a local path, parsed once,
//! so no open redirect can come out of it. Only the user's own pages are
//! allowed — `/account…`, `/plugins/<name>/…` and the operator console
//! `/admin…` (a staff member's passkey step-up) — written in a strict
//! alphabet: no scheme, no `//`, no backslash, no percent-encoding, no
//! whitespace or control characters, no `.`/`..` segments, no fragment.

const MAX_LEN: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnPath(String);

impl ReturnPath {
    /// The path if it is one of ours, else nothing (the caller then uses
    /// its default, never the given value).
    pub fn parse(raw: &str) -> Option<Self> {
        if raw.is_empty() || raw.len() > MAX_LEN || !raw.starts_with('/') || raw.contains("//") {
            return None;
        }
        let allowed = |b: u8| b.is_ascii_alphanumeric() || b"-._~/?=&".contains(&b);
        if !raw.bytes().all(allowed) {
            return None;
        }
        let path = raw.split('?').next().unwrap_or_default();
        if path.split('/').any(|seg| seg == "." || seg == "..") {
            return None;
        }
        let plugin =
            path.strip_prefix("/plugins/").and_then(|rest| rest.split('/').next()).is_some_and(|n| !n.is_empty());
        let own = |root: &str| path == root || path.strip_prefix(root).is_some_and(|r| r.starts_with('/'));
        (plugin || own("/account") || own("/admin")).then(|| ReturnPath(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::ReturnPath;

    #[test]
    fn only_local_account_and_plugin_paths() {
        for ok in [
            "/plugins/health-code/",
            "/plugins/health-code/?for=ab12",
            "/account",
            "/account/kin",
            "/account?x=1",
            "/admin",
            "/admin/people/ab",
        ] {
            assert_eq!(ReturnPath::parse(ok).map(|p| p.as_str().to_string()), Some(ok.to_string()), "{ok}");
        }
        for bad in [
            "",
            "https://evil.example/",
            "//evil.example/plugins/x",
            "/\\evil.example",
            "/plugins//evil.example",
            "/plugins/",
            "/plugins/x/../../admin",
            "/plugins/./x",
            "/plugins/x/%2e%2e/admin",
            "/plugins/x%2F%2Fevil",
            "/account/../authorize",
            "/accounting",
            "/administrator",
            "/admin/../authorize",
            "/plugins/x#frag",
            "/plugins/x y",
            "/plugins/x\n",
            "/plugins/x@evil",
            "javascript:alert(1)",
            "/plugins/\u{ff0e}\u{ff0e}/x",
        ] {
            assert_eq!(ReturnPath::parse(bad), None, "{bad:?}");
        }
        assert_eq!(ReturnPath::parse(&format!("/account/{}", "a".repeat(600))), None);
    }
}
