//! What a citizen may edit about themselves (A5) and account deletion (A6).
use crate::store::entities::{consent, user};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};
use serde_json::{Map, Value};

/// The 56 recognised ethnic groups (A5), in the official order.
pub const ETHNIC_GROUPS: [&str; 56] = [
    "汉族",
    "蒙古族",
    "回族",
    "藏族",
    "维吾尔族",
    "苗族",
    "彝族",
    "壮族",
    "布依族",
    "朝鲜族",
    "满族",
    "侗族",
    "瑶族",
    "白族",
    "土家族",
    "哈尼族",
    "哈萨克族",
    "傣族",
    "黎族",
    "傈僳族",
    "佤族",
    "畲族",
    "高山族",
    "拉祜族",
    "水族",
    "东乡族",
    "纳西族",
    "景颇族",
    "柯尔克孜族",
    "土族",
    "达斡尔族",
    "仫佬族",
    "羌族",
    "布朗族",
    "撒拉族",
    "毛南族",
    "仡佬族",
    "锡伯族",
    "阿昌族",
    "普米族",
    "塔吉克族",
    "怒族",
    "乌孜别克族",
    "俄罗斯族",
    "鄂温克族",
    "德昂族",
    "保安族",
    "裕固族",
    "京族",
    "塔塔尔族",
    "独龙族",
    "鄂伦春族",
    "赫哲族",
    "门巴族",
    "珞巴族",
    "基诺族",
];

#[derive(Debug, Default, Clone)]
pub struct ProfileEdit {
    pub nickname: String,
    pub gender: String,
    pub ethnicity: String,
}

/// Validates the editable details and returns the row to store; name and
/// phone are not editable here (A5: they change only through verified
/// flows). `changes::edit_profile` stores it with its audit record.
pub fn edited(u: user::Model, edit: &ProfileEdit, now: i64) -> Result<user::ActiveModel, &'static str> {
    if edit.nickname.chars().count() > 30 {
        return Err("profile_nickname_rule");
    }
    if !matches!(edit.gender.as_str(), "" | "male" | "female") {
        return Err("profile_gender_rule");
    }
    if !edit.ethnicity.is_empty() && !ETHNIC_GROUPS.contains(&edit.ethnicity.as_str()) {
        return Err("profile_ethnicity_rule");
    }
    let mut profile: Map<String, Value> =
        u.profile.as_deref().and_then(|p| serde_json::from_str(p).ok()).unwrap_or_default();
    for (key, value) in [("nickname", &edit.nickname), ("gender", &edit.gender), ("ethnicity", &edit.ethnicity)] {
        if value.trim().is_empty() {
            profile.remove(key);
        } else {
            profile.insert(key.into(), Value::from(value.trim()));
        }
    }
    let mut model: user::ActiveModel = u.into();
    model.profile = Set(Some(Value::Object(profile).to_string()));
    model.updated_at = Set(now);
    Ok(model)
}

/// Erases the account (A6) inside the caller's transaction
/// (`accounts::delete_account`): the row with its phone, username and
/// real-name data goes, so they can be registered again; consents and the
/// identity go. The audit log keeps only the pseudonymous subject id.
pub async fn erase<C: ConnectionTrait>(conn: &C, user_id: &str) -> Result<(), DbErr> {
    consent::Entity::delete_many().filter(consent::Column::UserId.eq(user_id)).exec(conn).await?;
    crate::domain::identity::forget(conn, user_id).await?;
    user::Entity::delete_by_id(user_id.to_owned()).exec(conn).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn fifty_six_distinct_groups() {
        let mut v = super::ETHNIC_GROUPS.to_vec();
        v.sort();
        v.dedup();
        assert_eq!(v.len(), 56);
    }
}
