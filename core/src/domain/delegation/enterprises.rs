//! Legal persons (C1–C5): enterprises identified by their unified social
//! credit code, the legal representative on record and the natural-person
//! account linked to him, enterprise sign-in as representative or agent,
//! agent registration, and representative change requests for staff.
use crate::crypto::password::PasswordService;
use crate::crypto::random_token;
use crate::domain::audit::{Actor, Event};
use crate::domain::delegation::uscc::Uscc;
use crate::domain::delegation::{self, DelegationState, Kind, NewDelegation};
use crate::domain::identity::documents::DocumentNumber;
use crate::domain::identity::users::{PhoneNumber, UserService};
use crate::store::Store;
use crate::store::entities::{
    agent_registration, delegation as delegation_e, enterprise, identity, representative_change, user,
};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, Set};

/// C2: 6–15 characters with at least two of digits, letters and symbols.
pub fn check_enterprise_password(password: &str) -> Result<(), &'static str> {
    let n = password.chars().count();
    if !(6..=15).contains(&n) || !password.chars().all(|c| c.is_ascii_graphic()) {
        return Err("enterprise_password_rule");
    }
    let kinds = [
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| c.is_ascii_alphabetic()),
        password.chars().any(|c| c.is_ascii_punctuation()),
    ];
    if kinds.iter().filter(|k| **k).count() < 2 {
        return Err("enterprise_password_rule");
    }
    Ok(())
}

pub struct NewEnterprise {
    pub uscc: Uscc,
    pub name: String,
    pub region: String,
    pub representative_name: String,
    /// Any document type (A2): a resident ID card, a passport, a permit.
    pub representative_id_number: DocumentNumber,
    pub representative_phone: PhoneNumber,
    pub password: String,
}

#[derive(Debug, thiserror::Error)]
pub enum EnterpriseError {
    #[error("{0}")]
    Invalid(&'static str),
    #[error("storage unavailable: {0}")]
    Store(#[from] DbErr),
    #[error("internal error: {0}")]
    Internal(#[from] anyhow::Error),
}

/// The account whose real-name identity is the representative on record:
/// same ID number, same name (C1).
pub async fn representative_account<C: ConnectionTrait>(
    db: &C,
    name: &str,
    id_number: &str,
) -> Result<Option<user::Model>, DbErr> {
    Ok(user::Entity::find()
        .filter(user::Column::IdNumber.eq(id_number))
        .one(db)
        .await?
        .filter(|u| u.name.as_deref() == Some(name) && !u.disabled))
}

/// `idp enterprise create`: an enterprise with its first password (C2's
/// rule), created by [`found`] like a registration from the web and
/// audited as the back-office `operator`'s.
pub async fn create(
    db: &Store,
    passwords: &PasswordService,
    new: NewEnterprise,
    operator: &str,
    now: i64,
) -> Result<enterprise::Model, EnterpriseError> {
    check_enterprise_password(&new.password).map_err(EnterpriseError::Invalid)?;
    if find_by_uscc(db, new.uscc.as_str()).await?.is_some() {
        return Err(EnterpriseError::Invalid("enterprise_exists"));
    }
    let founding = Founding {
        uscc: &new.uscc,
        name: &new.name,
        region: &new.region,
        representative_name: &new.representative_name,
        representative_id_number: &new.representative_id_number,
        representative_phone: &new.representative_phone,
        password_hash: passwords.hash(new.password).await?,
        registrant: None,
        operator,
    };
    found(db, founding, now).await?.map_err(EnterpriseError::Invalid)
}

/// An enterprise's record as it is created.
pub struct Founding<'a> {
    pub uscc: &'a Uscc,
    pub name: &'a str,
    pub region: &'a str,
    pub representative_name: &'a str,
    pub representative_id_number: &'a DocumentNumber,
    pub representative_phone: &'a PhoneNumber,
    /// The first password's hash, or `onboarding::PASSWORD_UNSET`.
    pub password_hash: String,
    /// The representative registering it himself from the web, his face
    /// just checked: his account is linked, the check recorded and the
    /// registration audited as his. `None` (the command line): the account
    /// holding the representative's real-name identity, if any, is linked.
    pub registrant: Option<&'a str>,
    /// Who created it when there is no registrant (the audit's operator).
    pub operator: &'a str,
}

fn is_unique_violation(e: &DbErr) -> bool {
    matches!(e.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_)))
}

/// The one place an enterprise is created (`idp enterprise create`, the
/// web registration), in one transaction. The credit code is unique: of
/// two creations racing, one wins; the other reads `enterprise_exists`.
pub async fn found(db: &Store, f: Founding<'_>, now: i64) -> Result<Result<enterprise::Model, Refusal>, DbErr> {
    let txn = crate::store::begin_write(db).await?;
    crate::store::lock(&txn, &format!("enterprise-uscc:{}", f.uscc.as_str())).await?;
    let taken =
        enterprise::Entity::find().filter(enterprise::Column::Uscc.eq(f.uscc.as_str())).one(&txn).await?.is_some();
    if taken {
        return Ok(Err("enterprise_exists"));
    }
    let (representative, face_at) = match f.registrant {
        Some(user_id) => (Some(user_id.to_string()), Some(now)),
        None => {
            let rep = representative_account(&txn, f.representative_name, f.representative_id_number.as_str()).await?;
            (rep.map(|u| u.id), None)
        }
    };
    let inserted = enterprise::ActiveModel {
        id: Set(uuid::Uuid::new_v4().to_string()),
        uscc: Set(f.uscc.as_str().into()),
        name: Set(f.name.into()),
        region: Set(f.region.into()),
        representative_name: Set(f.representative_name.into()),
        representative_id_number: Set(f.representative_id_number.as_str().into()),
        representative_phone: Set(f.representative_phone.as_str().into()),
        representative_user_id: Set(representative),
        password_hash: Set(f.password_hash),
        representative_face_at: Set(face_at),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await;
    let e = match inserted {
        Ok(e) => e,
        // The unique credit code decides a race the lock did not see.
        Err(err) if is_unique_violation(&err) => return Ok(Err("enterprise_exists")),
        Err(err) => return Err(err),
    };
    let subject = format!("enterprise:{}", e.id);
    let detail = format!("uscc={} region={}", e.uscc, e.region);
    let event = match f.registrant {
        Some(user_id) => Event::new("enterprise_registered", Actor::User(user_id), &subject),
        None => Event::new("enterprise_created", Actor::Operator(f.operator), &subject),
    };
    crate::domain::audit::record(&txn, event.detail(&detail), now).await?;
    match txn.commit().await {
        Ok(()) => Ok(Ok(e)),
        Err(err) if is_unique_violation(&err) => Ok(Err("enterprise_exists")),
        Err(err) => Err(err),
    }
}

pub async fn find_by_uscc(db: &Store, uscc: &str) -> Result<Option<enterprise::Model>, DbErr> {
    enterprise::Entity::find().filter(enterprise::Column::Uscc.eq(uscc)).one(db).await
}

pub async fn find(db: &Store, id: &str) -> Result<Option<enterprise::Model>, DbErr> {
    enterprise::Entity::find_by_id(id.to_owned()).one(db).await
}

/// The enterprise a session acts for as its legal representative (C3: only
/// he manages its agents): `None` when the session acts for nobody, acts as
/// an agent, or its person no longer represents the enterprise.
pub async fn represented_in_session(
    db: &Store,
    session: &crate::domain::authn::sessions::SessionInfo,
) -> Result<Option<enterprise::Model>, DbErr> {
    let acting = crate::domain::delegation::acting::of_session(db, &session.sid).await?;
    let Some(a) = acting.filter(|a| a.delegation_id.is_none()) else { return Ok(None) };
    Ok(find(db, &a.enterprise_id)
        .await?
        .filter(|e| e.representative_user_id.as_deref() == Some(session.user_id.as_str())))
}

/// Enterprises a person represents (for the personal centre).
pub async fn represented_by(db: &Store, user_id: &str) -> Result<Vec<enterprise::Model>, DbErr> {
    enterprise::Entity::find().filter(enterprise::Column::RepresentativeUserId.eq(user_id)).all(db).await
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Representative,
    Agent,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Representative => "representative",
            Role::Agent => "agent",
        }
    }
}

/// Who signs in for which enterprise, and whether this first sign-in still
/// needs the person's face check (C1).
#[derive(Debug, Clone)]
pub struct EnterpriseSignIn {
    pub enterprise: enterprise::Model,
    pub user_id: String,
    pub role: Role,
    pub delegation_id: Option<String>,
    /// The ID number whose face must be checked first, if any.
    pub face_of: Option<String>,
}

/// Sign-in refusals, each a locale key.
pub type Refusal = &'static str;

/// The one answer to every failed enterprise sign-in (unknown credit code,
/// wrong password, not an agent, pending or revoked agent, no
/// representative account): a different answer after a right password
/// would tell a guesser the password was right — for agents, a citizen
/// password checked outside the citizen lockout.
pub const SIGN_IN_REFUSED: Refusal = "enterprise_login_failed";

/// While the first-sign-in face check (C1) of the person for this
/// enterprise is outstanding, nothing but the web sign-in (which sends him
/// to the face gate) may act for the enterprise.
pub const FACE_OUTSTANDING: Refusal = "enterprise_face_outstanding";

impl EnterpriseSignIn {
    /// The sign-in, unless its first-sign-in face check is outstanding:
    /// for entries that cannot show the face gate (token exchange).
    pub fn face_checked(self) -> Result<Self, Refusal> {
        if self.face_of.is_some() { Err(FACE_OUTSTANDING) } else { Ok(self) }
    }
}

/// C1 representative: credit code + the enterprise's password; the linked
/// account must still match the representative on record.
pub async fn sign_in_representative(
    db: &Store,
    passwords: &PasswordService,
    uscc: &str,
    password: &str,
) -> Result<Result<EnterpriseSignIn, Refusal>, EnterpriseError> {
    let found = match Uscc::parse(uscc) {
        Ok(u) => find_by_uscc(db, u.as_str()).await?,
        Err(_) => None,
    };
    // An enterprise registered from the web whose representative has not
    // set its password yet opens with nothing (checked against the dummy
    // hash, same timing).
    let hash = found.as_ref().map(|e| e.password_hash.clone()).filter(|h| h != super::onboarding::PASSWORD_UNSET);
    let ok = passwords.verify(password.to_string(), hash).await?;
    let Some(e) = found.filter(|_| ok) else {
        return Ok(Err(SIGN_IN_REFUSED));
    };
    let Some(rep) = representative_account(db, &e.representative_name, &e.representative_id_number).await? else {
        return Ok(Err(SIGN_IN_REFUSED));
    };
    if e.representative_user_id.as_deref() != Some(rep.id.as_str()) {
        link_representative(db, &e.id, &rep.id).await?;
    }
    Ok(Ok(as_representative(e, rep.id)))
}

fn as_representative(e: enterprise::Model, user_id: String) -> EnterpriseSignIn {
    let face_of = e.representative_face_at.is_none().then(|| e.representative_id_number.clone());
    EnterpriseSignIn { user_id, role: Role::Representative, delegation_id: None, face_of, enterprise: e }
}

/// Whether `person` may act for the enterprise now, and as what: its linked
/// representative, or an agent whose delegation is in force. The face-check
/// state comes with it (`face_of`), so every entry sees the same C1 rule:
/// the web sign-in opens the face gate, the token exchange refuses
/// (`EnterpriseSignIn::face_checked`).
pub async fn act_for(
    db: &Store,
    e: enterprise::Model,
    person: &user::Model,
    now: i64,
) -> Result<Result<EnterpriseSignIn, Refusal>, DbErr> {
    if person.disabled {
        return Ok(Err(SIGN_IN_REFUSED));
    }
    if e.representative_user_id.as_deref() == Some(person.id.as_str()) {
        return Ok(Ok(as_representative(e, person.id.clone())));
    }
    agent_of(db, e, person, now).await
}

/// The throttle keys of an enterprise password attempt (C1, A3): never a
/// raw form field an attacker could vary to get a fresh counter.
#[derive(Debug, Clone)]
pub struct ThrottleKeys {
    /// The representative: the canonical credit code. An agent: the credit
    /// code and the account the identifier names (its canonical form when
    /// it names none).
    pub enterprise: String,
    /// An agent attempt also counts against the account's own citizen
    /// lockout: the enterprise login is no side door for guessing it.
    pub citizen: Option<String>,
}

pub async fn throttle_keys(
    users: &UserService,
    uscc: &Uscc,
    role: Role,
    agent_login: &str,
) -> Result<ThrottleKeys, anyhow::Error> {
    if role == Role::Representative {
        return Ok(ThrottleKeys { enterprise: format!("enterprise:{}", uscc.as_str()), citizen: None });
    }
    let login = agent_login.trim();
    Ok(match users.find_by_login(login).await.map_err(|e| anyhow::anyhow!("{e}"))? {
        Some(u) => agent_keys(uscc.as_str(), &u),
        // No such person: the identifier's canonical form, the same key the
        // citizen sign-in throttles an unknown identifier on, so respelling
        // it gives no fresh counter here either.
        None => {
            let citizen =
                crate::domain::authn::throttle::citizen_key(users, login).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            ThrottleKeys { enterprise: format!("enterprise:{}:?{citizen}", uscc.as_str()), citizen: Some(citizen) }
        }
    })
}

/// An agent's enterprise-password throttle keys (sign-in and password
/// change share them): the credit code and his account id, and his
/// account's own citizen lockout (the counter `/login` uses for him).
pub fn agent_keys(uscc: &str, agent: &user::Model) -> ThrottleKeys {
    ThrottleKeys {
        enterprise: format!("enterprise:{uscc}:{}", agent.id),
        citizen: Some(crate::domain::authn::throttle::account_of(&agent.id)),
    }
}

async fn link_representative(db: &Store, enterprise_id: &str, user_id: &str) -> Result<(), DbErr> {
    enterprise::Entity::update_many()
        .col_expr(enterprise::Column::RepresentativeUserId, Expr::value(user_id))
        .filter(enterprise::Column::Id.eq(enterprise_id))
        .exec(db)
        .await?;
    Ok(())
}

/// C1 agent ("我是代理人"): credit code + the agent's account + a password.
/// When his agent delegation for that enterprise came from C2 registration,
/// the password is the one set there or since changed or reset (his
/// account's own password is then not accepted here); otherwise it is his
/// account's password (`agent_password::sign_in_hash`).
pub async fn sign_in_agent_with_password(
    db: &Store,
    users: &UserService,
    passwords: &PasswordService,
    uscc: &str,
    login: &str,
    password: &str,
    now: i64,
) -> Result<Result<EnterpriseSignIn, Refusal>, EnterpriseError> {
    let agent = users.find_by_login(login).await.map_err(|e| anyhow::anyhow!("{e}"))?.filter(|u| !u.disabled);
    let enterprise = match Uscc::parse(uscc) {
        Ok(u) => find_by_uscc(db, u.as_str()).await?,
        Err(_) => None,
    };
    let hash = match (&agent, &enterprise) {
        (Some(a), Some(e)) => crate::domain::delegation::agent_password::sign_in_hash(
            delegation::agent_delegation(db, &e.id, &a.id).await?.as_ref(),
            a,
        ),
        (Some(a), None) => Some(a.password_hash.clone()),
        _ => None,
    };
    let ok = passwords.verify(password.to_string(), hash).await?;
    match (agent.filter(|_| ok), enterprise) {
        (Some(a), Some(e)) => Ok(agent_of(db, e, &a, now).await?),
        _ => Ok(Err(SIGN_IN_REFUSED)),
    }
}

/// C1 agent, once his password is checked: only an active agent delegation
/// of that enterprise lets him in; whatever else is refused with the one
/// answer.
async fn agent_of(
    db: &Store,
    e: enterprise::Model,
    agent: &user::Model,
    now: i64,
) -> Result<Result<EnterpriseSignIn, Refusal>, DbErr> {
    let Some(d) = delegation::agent_delegation(db, &e.id, &agent.id).await?.filter(|d| delegation::in_force(d, now))
    else {
        return Ok(Err(SIGN_IN_REFUSED));
    };
    let face_of = if d.face_at.is_none() { agent.id_number.clone().or(Some(String::new())) } else { None };
    Ok(Ok(EnterpriseSignIn {
        user_id: agent.id.clone(),
        role: Role::Agent,
        delegation_id: Some(d.id),
        face_of,
        enterprise: e,
    }))
}

/// Records the first-sign-in face check of the representative or agent.
pub async fn mark_face(db: &Store, s: &EnterpriseSignIn, now: i64) -> Result<(), DbErr> {
    match &s.delegation_id {
        Some(d) => delegation::mark_face(db, d, now).await,
        None => {
            enterprise::Entity::update_many()
                .col_expr(enterprise::Column::RepresentativeFaceAt, Expr::value(now))
                .filter(enterprise::Column::Id.eq(s.enterprise.id.as_str()))
                .exec(db)
                .await?;
            Ok(())
        }
    }
}

/// What the C2 form collected about the agent besides his password: kept
/// with his pending delegation (`agent_registrations`) and shown to the
/// representative who decides it (C3); for a person no account holds yet,
/// his account's real-name identity and profile are made of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentDetails {
    /// The name on the agent's document.
    pub name: String,
    pub region: String,
    /// The agent's document type (A2, `DocumentType::as_str`).
    pub doc_type: String,
    pub valid_from: String,
    /// `None` = long-term.
    pub valid_to: Option<String>,
    /// `male` or `female`.
    pub gender: String,
    pub ethnicity: String,
    /// The phone that passed the form's SMS code.
    pub phone: String,
    pub rep_phone: String,
}

/// The form's phone is already another account's: the new agent's account
/// cannot have it (nothing is kept).
pub const AGENT_PHONE_TAKEN: Refusal = "agent_register_phone_taken";

/// C2: the agent's face gate opened — by the verifier's face pass of the
/// person the form named, through the app (`face_gate`) — so he becomes a
/// pending agent of the enterprise (for the representative to approve,
/// C3), carrying the hash of the password set on the form: the one he
/// types at this enterprise's login as agent. What the form collected is
/// stored with the delegation, all in one transaction.
///
/// The account is the one holding his real-name identity; when none does
/// (seed 004: a person new to the platform registers as agent), his
/// citizen account is created in the same transaction: the identity
/// recorded from the form's document at the level a face check gives (L3,
/// `face`), the phone that passed the SMS code, gender and ethnicity in
/// the profile, no personal password (he may set one through "forgot
/// password"), audited as `agent_account_created`. A phone another account
/// has → [`AGENT_PHONE_TAKEN`], nothing kept. The unique indexes decide
/// races: of two registrations of one person, one creates the account and
/// the other finds it held (one account, and one pending agent per
/// enterprise).
pub async fn register_agent(
    db: &Store,
    enterprise_id: &str,
    agent_id_number: &str,
    agent_password_hash: &str,
    details: &AgentDetails,
    now: i64,
) -> Result<Result<delegation_e::Model, Refusal>, DbErr> {
    let hash = Some(agent_password_hash.to_string()).filter(|h| !h.is_empty());
    // A second pass only after a racing registration won a unique index.
    for _ in 0..2 {
        let txn = crate::store::begin_write(db).await?;
        let holder = identity::Entity::find()
            .filter(identity::Column::DocNumber.eq(agent_id_number))
            .one(&txn)
            .await?
            .map(|i| i.user_id);
        let user_id = match holder {
            Some(user_id) => user_id,
            None => match create_agent_account(&txn, enterprise_id, agent_id_number, details, now).await? {
                NewAgent::Created(user_id) => user_id,
                NewAgent::Refused(refusal) => {
                    txn.rollback().await?;
                    return Ok(Err(refusal));
                }
                NewAgent::Raced => {
                    txn.rollback().await?;
                    continue;
                }
            },
        };
        let by = Actor::User(&user_id);
        let d = match insert_agent(&txn, enterprise_id, &user_id, hash.clone(), ("agent_registered", by), now).await? {
            Ok(d) => d,
            Err(refusal) => {
                txn.rollback().await?;
                return Ok(Err(refusal));
            }
        };
        agent_registration::ActiveModel {
            delegation_id: Set(d.id.clone()),
            region: Set(details.region.clone()),
            doc_type: Set(details.doc_type.clone()),
            valid_from: Set(details.valid_from.clone()),
            valid_to: Set(details.valid_to.clone()),
            gender: Set(details.gender.clone()),
            ethnicity: Set(details.ethnicity.clone()),
            phone: Set(details.phone.clone()),
            rep_phone: Set(details.rep_phone.clone()),
            created_at: Set(now),
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        return Ok(Ok(d));
    }
    // Still clashing: an account holds the number without a real-name
    // identity (created with it before binding existed).
    Ok(Err(AGENT_IDENTITY_CONFLICT))
}

/// C2, before the agent's face check is asked for: [`AGENT_PHONE_TAKEN`]
/// when no account holds his identity (one would be created) and the
/// form's phone is another account's. [`register_agent`] checks again in
/// its transaction; this only spares him a face check bound to fail.
pub async fn agent_phone_refusal(db: &Store, id_number: &str, phone: &PhoneNumber) -> Result<Option<Refusal>, DbErr> {
    let held = identity::Entity::find().filter(identity::Column::DocNumber.eq(id_number)).one(db).await?.is_some();
    let taken = crate::domain::identity::accounts::phone_taken(db, phone).await?;
    Ok((!held && taken).then_some(AGENT_PHONE_TAKEN))
}

/// The document number is on an account that holds no real-name identity
/// for it: that account must complete real-name verification first.
pub const AGENT_IDENTITY_CONFLICT: Refusal = "agent_register_identity_conflict";

enum NewAgent {
    Created(String),
    Refused(Refusal),
    /// A unique index refused the account or its identity: someone else
    /// registered meanwhile; the caller rolls back and looks again.
    Raced,
}

/// The agent's citizen account (see [`register_agent`]), inside its
/// transaction, through the same creation functions as every account:
/// `accounts::create_without_password` and `identity::record_for_new_account`.
async fn create_agent_account<C: ConnectionTrait>(
    txn: &C,
    enterprise_id: &str,
    number: &str,
    details: &AgentDetails,
    now: i64,
) -> Result<NewAgent, DbErr> {
    use crate::domain::identity::documents::{Document, DocumentType, PersonName, Validity};
    let kind = DocumentType::parse(&details.doc_type).unwrap_or(DocumentType::ResidentId);
    let valid_to = details.valid_to.as_deref().unwrap_or_default();
    let doc = match (
        DocumentNumber::parse(kind, number),
        PersonName::parse(&details.name),
        Validity::parse(&details.valid_from, valid_to, valid_to.is_empty()),
    ) {
        (Ok(n), Ok(name), Ok(validity)) => Document::new(n, name, validity, super::today(now)).ok(),
        _ => None,
    };
    let (Some(doc), Ok(phone)) = (doc, PhoneNumber::parse(&details.phone)) else {
        return Ok(NewAgent::Refused("agent_register_fields"));
    };
    if user::Entity::find().filter(user::Column::Phone.eq(phone.as_str())).one(txn).await?.is_some() {
        return Ok(NewAgent::Refused(AGENT_PHONE_TAKEN));
    }
    let profile = serde_json::json!({ "gender": details.gender, "ethnicity": details.ethnicity }).to_string();
    let accounts = crate::domain::identity::accounts::create_without_password(txn, &phone, Some(profile), now);
    let Some(u) = accounts.await? else { return Ok(NewAgent::Raced) };
    if !crate::domain::identity::record_for_new_account(txn, &u.id, &doc, 3, "face", now).await? {
        return Ok(NewAgent::Raced);
    }
    let (subject, detail) = (format!("user:{}", u.id), format!("enterprise={enterprise_id} level 3 face"));
    let event = Event::new("agent_account_created", Actor::User(&u.id), &subject).detail(&detail);
    crate::domain::audit::record(txn, event, now).await?;
    Ok(NewAgent::Created(u.id))
}

/// What the agents of an enterprise registered with (C2), by delegation
/// id; agents added by the representative or staff have none.
pub async fn registrations_of(
    db: &Store,
    delegation_ids: Vec<String>,
) -> Result<std::collections::HashMap<String, agent_registration::Model>, DbErr> {
    if delegation_ids.is_empty() {
        return Ok(Default::default());
    }
    Ok(agent_registration::Entity::find()
        .filter(agent_registration::Column::DelegationId.is_in(delegation_ids))
        .all(db)
        .await?
        .into_iter()
        .map(|r| (r.delegation_id.clone(), r))
        .collect())
}

/// C3 (representative, CLI, demo): adds a pending agent without an agent
/// password — he signs in with his own account's password. `by` is the
/// enterprise (its representative) or the operator at the command line.
pub async fn add_agent(
    db: &Store,
    enterprise_id: &str,
    agent_user_id: &str,
    by: Actor<'_>,
    now: i64,
) -> Result<Result<delegation_e::Model, Refusal>, DbErr> {
    insert_agent(db, enterprise_id, agent_user_id, None, ("agent_added", by), now).await
}

/// Adds an agent (pending) unless the person already has a pending or
/// active agent delegation for this enterprise; audited as `audit`
/// (action, actor) with the delegation.
async fn insert_agent<C: ConnectionTrait>(
    db: &C,
    enterprise_id: &str,
    agent_user_id: &str,
    agent_password_hash: Option<String>,
    audit: (&str, Actor<'_>),
    now: i64,
) -> Result<Result<delegation_e::Model, Refusal>, DbErr> {
    if let Some(d) = delegation::agent_delegation(db, enterprise_id, agent_user_id).await?
        && DelegationState::is_any(&d, &[DelegationState::Pending, DelegationState::Active])
    {
        return Ok(Err("agent_exists"));
    }
    let d = delegation::insert(
        db,
        NewDelegation {
            kind: Kind::Agent,
            enterprise_id: Some(enterprise_id.into()),
            principal_user_id: None,
            relative_name: None,
            relative_id_number: None,
            relation: None,
            grantee_user_id: agent_user_id.into(),
            scopes: String::new(),
            valid_from: None,
            valid_to: None,
            state: DelegationState::Pending,
            agent_password_hash,
        },
        now,
    )
    .await?;
    let subject = format!("delegation:{}", d.id);
    let detail = format!("enterprise={enterprise_id} agent={agent_user_id}");
    crate::domain::audit::record(db, Event::new(audit.0, audit.1, &subject).detail(&detail), now).await?;
    Ok(Ok(d))
}

/// C5: "法人信息不匹配" — the representative named in a request differs from
/// the one on record, so the representative changed and staff must handle it.
pub fn representative_matches(e: &enterprise::Model, name: &str, id_number: &str) -> bool {
    e.representative_name == name.trim() && e.representative_id_number == id_number
}

pub async fn file_change(
    db: &Store,
    enterprise_id: &str,
    kind: &str,
    name: &str,
    id_number: &str,
    phone: &str,
    now: i64,
) -> Result<String, DbErr> {
    let id = random_token(12);
    representative_change::ActiveModel {
        id: Set(id.clone()),
        enterprise_id: Set(enterprise_id.into()),
        kind: Set(kind.into()),
        new_name: Set(name.trim().into()),
        new_id_number: Set(id_number.into()),
        new_phone: Set(phone.into()),
        status: Set("pending".into()),
        reason: Set(None),
        decided_by: Set(None),
        created_at: Set(now),
        decided_at: Set(None),
    }
    .insert(db)
    .await?;
    Ok(id)
}

pub async fn changes(db: &Store, status: Option<&str>) -> Result<Vec<representative_change::Model>, DbErr> {
    let mut q = representative_change::Entity::find().order_by_asc(representative_change::Column::CreatedAt);
    if let Some(s) = status {
        q = q.filter(representative_change::Column::Status.eq(s));
    }
    q.all(db).await
}

/// Staff decision on a change request; approving updates the record (a new
/// representative loses nothing but the old one's link and first-sign-in
/// face check, which the new one must pass). Decided exactly once
/// (`domain::review::decide_once`).
pub async fn decide_change(
    db: &Store,
    id: &str,
    approve: bool,
    reason: &str,
    by: crate::domain::audit::Actor<'_>,
    now: i64,
) -> Result<Option<representative_change::Model>, DbErr> {
    use crate::domain::review;
    // The decision and the record's change commit together: an approved
    // request never leaves the record unchanged.
    let txn = crate::store::begin_write(db).await?;
    let decision = review::Decision::from_approve(approve);
    let reason = (!reason.is_empty()).then(|| reason.to_string());
    let decided = review::decide_once::<representative_change::Entity, _>(&txn, id, decision, reason, by, now).await?;
    let Some(c) = decided else {
        txn.rollback().await?;
        return Ok(None);
    };
    if approve {
        let mut q = enterprise::Entity::update_many()
            .col_expr(enterprise::Column::RepresentativePhone, Expr::value(c.new_phone.clone()))
            .col_expr(enterprise::Column::UpdatedAt, Expr::value(now));
        if c.kind == "representative" {
            let rep = representative_account(&txn, &c.new_name, &c.new_id_number).await?;
            q = q
                .col_expr(enterprise::Column::RepresentativeName, Expr::value(c.new_name.clone()))
                .col_expr(enterprise::Column::RepresentativeIdNumber, Expr::value(c.new_id_number.clone()))
                .col_expr(enterprise::Column::RepresentativeUserId, Expr::value(rep.map(|u| u.id)))
                .col_expr(enterprise::Column::RepresentativeFaceAt, Expr::value(Option::<i64>::None));
        }
        q.filter(enterprise::Column::Id.eq(c.enterprise_id.as_str())).exec(&txn).await?;
    }
    let subject = format!("representative_change:{}", c.id);
    let detail = format!("enterprise={} kind={}", c.enterprise_id, c.kind);
    let actions = ("enterprise_change_approved", "enterprise_change_rejected");
    review::record_decision(&txn, actions, decision, by, &subject, &detail, now).await?;
    txn.commit().await?;
    Ok(Some(c))
}

/// The SMS telling the applicant how staff decided a change request (C5):
/// the locale template with `{id}`, `{kind}` and `{reason}` filled in.
pub fn change_outcome_text(template: &str, c: &representative_change::Model) -> String {
    template
        .replace("{id}", &c.id)
        .replace("{kind}", &c.kind)
        .replace("{reason}", c.reason.as_deref().unwrap_or_default())
}

/// An enterprise password attempt as typed on the sign-in form (C1).
pub struct EnterpriseAttempt<'a> {
    pub uscc: &'a str,
    pub role: Role,
    /// The agent's own account (phone, ID number or username); agents only.
    pub agent: &'a str,
    pub password: &'a str,
    pub captcha_id: &'a str,
    pub captcha_answer: &'a str,
    pub ip: &'a str,
    pub now: i64,
}

/// What an enterprise sign-in needs.
pub struct EnterpriseServices<'a> {
    pub store: &'a Store,
    pub users: &'a UserService,
    pub passwords: &'a PasswordService,
    pub captcha: &'a crate::domain::authn::captcha::CaptchaService,
    pub throttle: &'a crate::config::ThrottleConfig,
}

/// How an enterprise sign-in attempt ended.
pub enum EnterpriseOutcome {
    /// The person may act for the enterprise; `face_of` tells whether the
    /// first-sign-in face check (C1) is still due.
    Signed(Box<EnterpriseSignIn>),
    /// The form was incomplete or the credit code malformed (not counted);
    /// the locale key of the message.
    Invalid(&'static str),
    /// A key of the attempt is locked (A3).
    Locked,
    /// The captcha demanded on a risky sign-in was missing or wrong.
    CaptchaWrong,
    /// [`SIGN_IN_REFUSED`]; `risky` asks for a captcha with the next try.
    Refused { risky: bool },
}

/// C1 + A3: the enterprise sign-in as representative or agent. Throttled
/// like the citizen sign-in on keys the form cannot vary ([`throttle_keys`]:
/// the credit code, and for an agent his account and its citizen lockout);
/// every key's attempt is reserved before the password is checked; once
/// risky a graphic captcha, checked after the attempt is counted; one
/// answer for every refusal. Failures and lockouts are audited by the
/// throttle; the success is audited by `authn::sign_in::finish` when the
/// session is made (after the face gate when that is due).
pub async fn enterprise_sign_in(
    s: EnterpriseServices<'_>,
    a: EnterpriseAttempt<'_>,
) -> Result<EnterpriseOutcome, EnterpriseError> {
    let uscc = match Uscc::parse(a.uscc) {
        Ok(u) => u,
        Err(e) => return Ok(EnterpriseOutcome::Invalid(e.message_key())),
    };
    if a.password.is_empty() || (a.role == Role::Agent && a.agent.trim().is_empty()) {
        return Ok(EnterpriseOutcome::Invalid("login_missing_fields"));
    }
    let keys = throttle_keys(s.users, &uscc, a.role, a.agent).await?;
    let risky = attempt_risky(s.store, &keys, a.ip, a.now).await?;
    let Some(held) = reserve_attempt(s.store, s.throttle, &keys, a.ip, a.now).await? else {
        return Ok(EnterpriseOutcome::Locked);
    };
    if risky && !s.captcha.check(a.captcha_id, a.captcha_answer).await? {
        return Ok(EnterpriseOutcome::CaptchaWrong);
    }
    let outcome = match a.role {
        Role::Representative => sign_in_representative(s.store, s.passwords, uscc.as_str(), a.password).await?,
        Role::Agent => {
            sign_in_agent_with_password(s.store, s.users, s.passwords, uscc.as_str(), a.agent, a.password, a.now)
                .await?
        }
    };
    match outcome {
        Ok(signed) => {
            release_attempt(s.store, held).await?;
            Ok(EnterpriseOutcome::Signed(Box::new(signed)))
        }
        Err(_) => {
            fail_attempt(s.store, held, a.ip, a.now).await?;
            let risky = attempt_risky(s.store, &keys, a.ip, a.now).await.unwrap_or(true);
            Ok(EnterpriseOutcome::Refused { risky })
        }
    }
}

/// A3: an enterprise attempt is risky once the enterprise key, the agent's
/// own account or the address has failed often.
pub async fn attempt_risky(db: &Store, keys: &ThrottleKeys, ip: &str, now: i64) -> Result<bool, DbErr> {
    use crate::domain::authn::throttle;
    let (ent, by_ip) = throttle::failures(db, &keys.enterprise, ip, now).await?;
    let citizen = match &keys.citizen {
        Some(login) => throttle::failures(db, login, ip, now).await?.0,
        None => 0,
    };
    Ok(throttle::risky(ent.max(citizen), by_ip))
}

/// Reserves an attempt on every key; `None` when any is locked.
pub async fn reserve_attempt(
    db: &Store,
    cfg: &crate::config::ThrottleConfig,
    keys: &ThrottleKeys,
    ip: &str,
    now: i64,
) -> Result<Option<Vec<crate::domain::authn::throttle::Reservation>>, DbErr> {
    use crate::domain::authn::throttle;
    let mut held = Vec::new();
    for key in std::iter::once(&keys.enterprise).chain(keys.citizen.as_ref()) {
        match throttle::reserve(db, cfg, key, ip, now).await? {
            throttle::Verdict::Proceed(r) => held.push(r),
            throttle::Verdict::Locked(_) => return Ok(None),
        }
    }
    Ok(Some(held))
}

/// The password was wrong: every key keeps its count; the failure is
/// audited once, on the most specific key (the agent's account when there
/// is one, else the enterprise).
pub async fn fail_attempt(
    db: &Store,
    mut held: Vec<crate::domain::authn::throttle::Reservation>,
    ip: &str,
    now: i64,
) -> Result<(), DbErr> {
    match held.pop() {
        Some(r) => crate::domain::authn::throttle::failed(db, r, ip, now).await,
        None => Ok(()),
    }
}

/// The password was right: every key's failures are forgotten.
pub async fn release_attempt(db: &Store, held: Vec<crate::domain::authn::throttle::Reservation>) -> Result<(), DbErr> {
    for r in held {
        crate::domain::authn::throttle::succeeded(db, r).await?;
    }
    Ok(())
}

/// C3: the representative adds the person a login (phone, ID number or
/// username) names as a pending agent; a missing or suspended account is
/// `agents_no_account`.
pub async fn add_agent_by_login(
    db: &Store,
    users: &UserService,
    enterprise_id: &str,
    login: &str,
    now: i64,
) -> Result<Result<delegation_e::Model, Refusal>, EnterpriseError> {
    let found = users.find_by_login(login.trim()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    match found {
        Some(u) if !u.disabled => Ok(add_agent(db, enterprise_id, &u.id, Actor::Enterprise(enterprise_id), now).await?),
        _ => Ok(Err("agents_no_account")),
    }
}

/// C3: approving a pending agent waits for the representative's own scan
/// and face check: the gate's payload, or `None` when the delegation is
/// not a pending agent of this enterprise (any more).
pub async fn approval_gate(
    db: &Store,
    e: &enterprise::Model,
    delegation_id: &str,
    representative_user_id: &str,
) -> Result<Option<crate::domain::assurance::face_gate::GatePayload>, DbErr> {
    use crate::domain::assurance::face_gate::{ApproveGate, GatePayload};
    Ok(delegation::find(db, delegation_id)
        .await?
        .filter(|d| {
            d.enterprise_id.as_deref() == Some(e.id.as_str())
                && DelegationState::of(d) == Some(DelegationState::Pending)
        })
        .map(|d| {
            GatePayload::ApproveAgent(ApproveGate {
                enterprise: e.id.clone(),
                delegation: d.id,
                user: representative_user_id.to_string(),
            })
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enterprise_password_rule() {
        assert!(check_enterprise_password("abc123").is_ok());
        assert!(check_enterprise_password("abc12").is_err());
        assert!(check_enterprise_password("abcdefgh").is_err());
        assert!(check_enterprise_password("1234567890123456").is_err());
        assert!(check_enterprise_password("12345!").is_ok());
    }
}
