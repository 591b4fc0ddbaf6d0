//! Natural-person accounts as the spine needs them: creation, lookup by any
//! login identifier (username, phone or resident ID number — A3) and the
//! OIDC standard claims released per scope.
use crate::clock::Clock;
use crate::crypto::password::PasswordService;
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::identity::documents::DocumentNumber;
use crate::store::Store;
use crate::store::entities::user;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use serde::Serialize;
use serde_json::{Map, Value};

/// A username per A1: 6–20 characters, a letter first, then letters,
/// digits or underscores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let ok_len = (6..=20).contains(&raw.chars().count());
        let mut chars = raw.chars();
        let first_letter = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
        let rest_ok = raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if ok_len && first_letter && rest_ok {
            Ok(Self(raw.to_string()))
        } else {
            Err("username: 6–20 characters, a letter first, then letters, digits or _".into())
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A mainland mobile number: 11 digits starting with 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let digits = raw.trim().trim_start_matches("+86").trim();
        if digits.len() == 11 && digits.starts_with('1') && digits.chars().all(|c| c.is_ascii_digit()) {
            Ok(Self(digits.to_string()))
        } else {
            Err("phone: 11 digits starting with 1".into())
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A resident ID number (GB 11643) with a valid ISO 7064 MOD 11-2 check
/// character; lower-case `x` and full-width digits are normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdNumber(String);

impl IdNumber {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let normal: String = raw
            .trim()
            .chars()
            .map(|c| match c {
                '０'..='９' => char::from_u32(c as u32 - '０' as u32 + '0' as u32).unwrap_or(c),
                'x' | 'ｘ' | 'Ｘ' => 'X',
                other => other,
            })
            .collect();
        let bytes = normal.as_bytes();
        let shape_ok = bytes.len() == 18
            && bytes[..17].iter().all(u8::is_ascii_digit)
            && (bytes[17].is_ascii_digit() || bytes[17] == b'X');
        if !shape_ok {
            return Err("ID number: 18 characters, digits with a final digit or X".into());
        }
        const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
        const CHECK: &[u8; 11] = b"10X98765432";
        let sum: u32 = bytes[..17].iter().zip(WEIGHTS).map(|(b, w)| u32::from(b - b'0') * w).sum();
        if CHECK[(sum % 11) as usize] != bytes[17] {
            return Err("ID number: the check character does not match".into());
        }
        let date = &normal[6..14];
        if chrono::NaiveDate::parse_from_str(date, "%Y%m%d").is_err() {
            return Err("ID number: the birth date part is not a real date".into());
        }
        Ok(Self(normal))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, Default)]
pub struct NewUser {
    pub username: String,
    pub password: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub id_number: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct UserSummary {
    pub sub: String,
    pub username: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub disabled: bool,
}

impl From<&user::Model> for UserSummary {
    fn from(u: &user::Model) -> Self {
        Self {
            sub: u.id.clone(),
            username: u.username.clone(),
            phone: u.phone.clone(),
            email: u.email.clone(),
            name: u.name.clone(),
            disabled: u.disabled,
        }
    }
}

/// The stored hash of an account that has no password (registered through
/// an upstream provider): no password verifies against it.
pub const NO_PASSWORD: &str = "!no-password";

/// Whether the account has a password it could be asked for.
pub fn has_password(u: &user::Model) -> bool {
    !u.password_hash.starts_with('!')
}

pub fn check_password_policy(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if !(8..=128).contains(&n) {
        return Err("password: 8 to 128 characters".into());
    }
    Ok(())
}

#[derive(Clone)]
pub struct UserService {
    db: Store,
    passwords: PasswordService,
    clock: Clock,
}

impl UserService {
    pub fn new(db: Store, passwords: PasswordService, clock: Clock) -> Self {
        Self { db, passwords, clock }
    }

    pub async fn create(&self, new: NewUser) -> DomainResult<UserSummary> {
        let bad = |m: String| DomainError::Internal(anyhow::anyhow!(m));
        let username = Username::parse(&new.username).map_err(bad)?;
        check_password_policy(&new.password).map_err(bad)?;
        let phone = new.phone.as_deref().map(PhoneNumber::parse).transpose().map_err(bad)?;
        let id_number = new
            .id_number
            .as_deref()
            .map(|n| DocumentNumber::parse_any(None, n))
            .transpose()
            .map_err(|e| bad(format!("document number: {}", e.key())))?;
        if let Some(email) = &new.email
            && (!email.contains('@') || email.len() > 254)
        {
            return Err(bad("email: not an e-mail address".into()));
        }
        let hash = self.passwords.hash(new.password.clone()).await?;
        let now = self.clock.now();
        let model = user::ActiveModel {
            id: Set(uuid::Uuid::new_v4().to_string()),
            username: Set(username.as_str().to_string()),
            phone: Set(phone.map(|p| p.as_str().to_string())),
            id_number: Set(id_number.map(|i| i.as_str().to_string())),
            email_verified: Set(new.email.is_some()),
            phone_verified: Set(new.phone.is_some()),
            email: Set(new.email.clone()),
            name: Set(new.name.clone()),
            profile: Set(None),
            address: Set(None),
            password_hash: Set(hash),
            disabled: Set(false),
            created_at: Set(now),
            updated_at: Set(now),
            proofing_level: Set(1),
        };
        let inserted = model.insert(&self.db).await.map_err(|e| match e.sql_err() {
            Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => {
                bad("username, phone or ID number is already registered".into())
            }
            _ => DomainError::Store(e),
        })?;
        Ok(UserSummary::from(&inserted))
    }

    pub async fn find(&self, id: &str) -> DomainResult<Option<user::Model>> {
        Ok(user::Entity::find_by_id(id.to_owned()).one(&self.db).await?)
    }

    /// Finds an account by whatever the person typed: a phone number, a
    /// document number of any of the seven types (A2) or a username (A3).
    /// A passport number can also be spelt like a username: the document
    /// on record wins, then the username.
    pub async fn find_by_login(&self, identifier: &str) -> DomainResult<Option<user::Model>> {
        let identifier = identifier.trim();
        if let Ok(d) = DocumentNumber::parse_any(None, identifier)
            && PhoneNumber::parse(identifier).is_err()
        {
            let found = user::Entity::find().filter(user::Column::IdNumber.eq(d.as_str())).one(&self.db).await?;
            if found.is_some() {
                return Ok(found);
            }
        }
        let query = if let Ok(p) = PhoneNumber::parse(identifier) {
            user::Entity::find().filter(user::Column::Phone.eq(p.as_str()))
        } else if let Ok(i) = IdNumber::parse(identifier) {
            user::Entity::find().filter(user::Column::IdNumber.eq(i.as_str()))
        } else if Username::parse(identifier).is_ok() {
            user::Entity::find().filter(user::Column::Username.eq(identifier))
        } else {
            return Ok(None);
        };
        Ok(query.one(&self.db).await?)
    }

    pub async fn list(&self) -> DomainResult<Vec<UserSummary>> {
        let rows = user::Entity::find().order_by_asc(user::Column::CreatedAt).all(&self.db).await?;
        Ok(rows.iter().map(UserSummary::from).collect())
    }

    pub async fn set_password(&self, login: &str, password: &str) -> DomainResult<bool> {
        check_password_policy(password).map_err(|m| DomainError::Internal(anyhow::anyhow!(m)))?;
        let Some(found) = self.find_by_login(login).await? else {
            return Ok(false);
        };
        self.replace_password(found, password).await?;
        Ok(true)
    }

    /// Stores a new password hash and ends every session and grant of the
    /// account (a new password revokes what the old one opened).
    pub async fn replace_password(&self, found: user::Model, password: &str) -> DomainResult<()> {
        let hash = self.passwords.hash(password.to_string()).await?;
        let id = found.id.clone();
        let mut model: user::ActiveModel = found.into();
        model.password_hash = Set(hash);
        let now = self.clock.now();
        model.updated_at = Set(now);
        model.update(&self.db).await?;
        crate::domain::tokens::grants::revoke_all_for_user(&self.db, &id, now).await?;
        crate::domain::authn::sessions::revoke_all_for_user(&self.db, &id).await?;
        Ok(())
    }

    /// Verifies a password for a login identifier without revealing, by
    /// answer or by timing, whether the account exists.
    pub async fn verify_password(&self, login: &str, password: &str) -> DomainResult<Option<user::Model>> {
        Ok(self.check_password(login, password).await?.user())
    }

    /// [`Self::verify_password`], telling a suspended account apart once
    /// its password is right (the sign-in page then says it is suspended).
    /// One hash either way, so the timing tells nothing more.
    pub async fn check_password(&self, login: &str, password: &str) -> DomainResult<PasswordCheck> {
        let found = self.find_by_login(login).await?;
        let hash = found.as_ref().map(|u| u.password_hash.clone());
        let ok = self.passwords.verify(password.to_string(), hash).await?;
        Ok(match found {
            Some(u) if ok && u.disabled => PasswordCheck::Suspended,
            Some(u) if ok => PasswordCheck::Valid(Box::new(u)),
            _ => PasswordCheck::Failed,
        })
    }
}

/// The outcome of a password check.
#[derive(Debug)]
pub enum PasswordCheck {
    Valid(Box<user::Model>),
    /// The password is right but the account is suspended (issue 15).
    Suspended,
    /// No such account or a wrong password: one answer for both.
    Failed,
}

impl PasswordCheck {
    pub fn user(self) -> Option<user::Model> {
        match self {
            PasswordCheck::Valid(u) => Some(*u),
            _ => None,
        }
    }
}

/// Standard claims for the given scopes plus individually requested ones
/// (the `claims` parameter), OIDC Core §5.4–5.5.
pub fn user_claims(
    u: &user::Model,
    scopes: &crate::domain::clients::scopes::ScopeSet,
    requested: &[String],
) -> Map<String, Value> {
    let profile: Map<String, Value> =
        u.profile.as_deref().and_then(|p| serde_json::from_str(p).ok()).unwrap_or_default();
    let value_of = |claim: &str| -> Option<Value> {
        match claim {
            "name" => u.name.clone().map(Value::from),
            "preferred_username" => Some(Value::from(u.username.clone())),
            "updated_at" => Some(Value::from(u.updated_at)),
            "email" => u.email.clone().map(Value::from),
            "email_verified" => u.email.as_ref().map(|_| Value::from(u.email_verified)),
            "phone_number" => u.phone.as_ref().map(|p| Value::from(format!("+86{p}"))),
            "phone_number_verified" => u.phone.as_ref().map(|_| Value::from(u.phone_verified)),
            // Claims we hold no value for are omitted, never invented (OIDC Core §5.3.2).
            "address" => u.address.as_deref().and_then(|a| serde_json::from_str::<Value>(a).ok()),
            other => profile.get(other).cloned(),
        }
    };
    let mut out = Map::new();
    let mut add = |claim: &str| {
        if !out.contains_key(claim)
            && let Some(v) = value_of(claim)
        {
            out.insert(claim.to_string(), v);
        }
    };
    for scope in scopes.iter() {
        for claim in crate::domain::clients::scopes::claims_for_scope(scope) {
            add(claim);
        }
    }
    for claim in requested {
        add(claim);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_number_check_digit() {
        assert!(IdNumber::parse("11010519491231002X").is_ok());
        assert!(IdNumber::parse("11010519491231002x").is_ok());
        assert!(IdNumber::parse("110105194912310021").is_err());
        assert!(IdNumber::parse("１１０１０５１９４９１２３１００２X").is_ok());
        assert!(IdNumber::parse("110105194913310029").is_err());
    }

    #[test]
    fn username_rules() {
        assert!(Username::parse("zhang_san1").is_ok());
        assert!(Username::parse("1zhangsan").is_err());
        assert!(Username::parse("short").is_err());
        assert!(Username::parse("has space1").is_err());
    }
}
