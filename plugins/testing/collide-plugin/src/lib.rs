//! Declares scope `example`, which already belongs to the example plugin: the host
//! must refuse to load it.
use idp_plugin_sdk::{Host, Localized, Manifest, Plugin, ScopeSpec, Value, declare_plugin};

pub struct Collide;

impl Plugin for Collide {
    fn manifest() -> Manifest {
        Manifest {
            name: "collide-plugin".into(),
            version: "0.0.1".into(),
            description: Localized::new("冲突测试插件", "Colliding test plugin"),
            scopes: vec![ScopeSpec {
                name: "example".into(),
                description: Localized::new("冲突", "Collision"),
                claims: vec!["collide_plugin".into()],
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
