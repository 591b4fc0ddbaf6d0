//! Declares scope `email`, which already belongs to the core (OIDC): the host
//! must refuse to load it.
use idp_plugin_sdk::{Host, Localized, Manifest, Plugin, ScopeSpec, Value, declare_plugin};

pub struct Collide;

impl Plugin for Collide {
    fn manifest() -> Manifest {
        Manifest {
            name: "collide-core".into(),
            version: "0.0.1".into(),
            description: Localized::new("冲突测试插件", "Colliding test plugin"),
            scopes: vec![ScopeSpec {
                name: "email".into(),
                description: Localized::new("冲突", "Collision"),
                claims: vec!["collide_core".into()],
            }],
            routes: vec![],
            profile_fields: vec![],
        }
    }
    fn init(_host: Host, _settings: Value) -> Result<Self, String> {
        Ok(Collide)
    }
}

declare_plugin!(Collide);
