//! Steps that need a fresh face check done through the app (C1 first
//! enterprise sign-in, C2 agent registration, C3 approval, E2 kin binding):
//! the browser's step waits in a gate naming whose face must be checked
//! (an ID number); the app's face check confirms the gate, and the browser
//! then takes it — once — to finish the step. Gates are bound to the
//! browser and live ten minutes; each transition is a conditional UPDATE.
//!
//! The gate page shows a scan ticket linked to the gate (`ticket_request`
//! says which purpose, for whom, and what the app shows). `confirm` is the
//! single seam that opens a gate: `scan::decide` calls it, in the same
//! transaction as the ticket's confirmation, with the app user's real-name
//! ID number — only the person the gate waits for opens it.
//!
//! Two kinds of gate wait for a person who need not be the app's account
//! (the person checked through the app, [`gate_face_check`]):
//!
//! - Kin gates (E2): the relative (an elder, a child of 7–16) need not have
//!   an account, so the guardian's app — the account that opened the gate —
//!   runs the verifier's face check of the relative standing in front of
//!   the phone (recorded as `kin_face` for that gate).
//! - Agent-registration gates (C2, seed 004): the agent may have no citizen
//!   account yet (one is created when his registration completes,
//!   `enterprises::register_agent`). When nobody holds his identity, the
//!   gate's ticket is open to any signed-in app ([`any_app_may_scan`]); the
//!   app that scanned it — and only while it holds the ticket — runs the
//!   verifier's face check of exactly the name and document the form gave
//!   (recorded as `agent_face` for that gate under the app's account). When
//!   an account holds his identity, only that account's app reads the
//!   ticket, and either its own recent face pass or such a gate check opens
//!   the gate — whether or not that app is signed in as him.
//!
//! Either way the confirm opens the gate only when such a pass was recorded
//! for this gate (hence for its name and number) by the confirming app's
//! account in the last minutes ([`gate_face_passed`], inside the confirm's
//! transaction).
//!
//! No anonymous app endpoint: the app must be signed in (any account the
//! administrator's `scan_login` scope lets in). The ticket id alone — a QR
//! code anyone near the screen can photograph — would then be the only
//! credential; a signed-in app binds the ticket to one device (its grant),
//! names who ran each verifier call in the audit trail and lets the
//! verifier's (paid) face checks be rate-limited per account. A person with
//! no account of his own scans with a colleague's or the enterprise's app,
//! or registers a citizen account in the app first; what opens the gate is
//! still the verifier's pass of *his* face.
use crate::crypto::random_token;
use crate::domain::authn::flows::mask_id_number;
use crate::domain::authn::scan::Purpose;
use crate::domain::delegation::kin::mask_name;
use crate::domain::identity::documents::{
    Document, DocumentNumber, DocumentType, PersonName, Validity, mask_name as mask_doc_name, mask_number,
};
use crate::domain::identity::{FACE_FRESH, face_required, record};
use crate::ports::verifier::{FaceSample, IdentityVerifier, Outcome, VerifierError};
use crate::store::Store;
use crate::store::entities::{delegation, enterprise, face_gate, identity, scan_ticket, user, verification};
use chrono::NaiveDate;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub const LIFETIME: i64 = 10 * 60;

/// What a gate waits for. The `purpose` column keeps the strings of
/// [`GatePurpose::as_str`] (pages and message keys are built from them too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatePurpose {
    /// C1: the first enterprise sign-in of the representative or an agent.
    EnterpriseLogin,
    /// C3: the representative approves a pending agent.
    ApproveAgent,
    /// C2: the agent's own face check at registration.
    RegisterAgent,
    /// E2: binding a relative older than six.
    KinBind,
    /// Seed 004 §2: the representative registers his enterprise.
    RegisterEnterprise,
}

impl GatePurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            GatePurpose::EnterpriseLogin => "enterprise_login",
            GatePurpose::ApproveAgent => "approve_agent",
            GatePurpose::RegisterAgent => "register_agent",
            GatePurpose::KinBind => "kin_bind",
            GatePurpose::RegisterEnterprise => "register_enterprise",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "enterprise_login" => Some(GatePurpose::EnterpriseLogin),
            "approve_agent" => Some(GatePurpose::ApproveAgent),
            "register_agent" => Some(GatePurpose::RegisterAgent),
            "kin_bind" => Some(GatePurpose::KinBind),
            "register_enterprise" => Some(GatePurpose::RegisterEnterprise),
            _ => None,
        }
    }

    /// The purpose of a stored gate; `None` for a value no version wrote.
    pub fn of(gate: &face_gate::Model) -> Option<Self> {
        Self::parse(&gate.purpose)
    }
}

// The payloads below are stored as JSON in the gate's `payload` column; the
// field names are the ones written before they had types, and every field
// defaults, so a row written by any version reads back as it did.

/// C1: who signs in for which enterprise, and the authorization request
/// the sign-in continues.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LoginGate {
    pub enterprise: String,
    pub user: String,
    /// `representative` or `agent`.
    pub role: String,
    pub delegation: Option<String>,
    pub req: String,
}

/// C3: the pending agent delegation the representative approves.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ApproveGate {
    pub enterprise: String,
    pub delegation: String,
    /// The representative's account.
    pub user: String,
}

/// C2: the agent's registration form. Only the hash of the agent password
/// waits in the gate, and the app never reads the payload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RegisterGate {
    pub enterprise: String,
    pub name: String,
    pub id_number: String,
    pub phone: String,
    pub agent_password_hash: String,
    /// What else the form collected (kept with the pending agent, C2).
    pub region: String,
    pub doc_type: String,
    pub valid_from: String,
    /// Empty for a long-term document.
    pub valid_to: String,
    pub gender: String,
    pub ethnicity: String,
    pub rep_phone: String,
}

/// E2: the kin form as declared, and the commitment accepted before the
/// gate opened (server-side, so its time and version stand).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct KinGate {
    /// The guardian, whose browser and app own the gate.
    pub user: String,
    pub name: String,
    pub id_number: String,
    pub relation: String,
    pub valid_from: String,
    /// Empty for a long-term card.
    pub valid_to: String,
    pub commitment_version: String,
    pub commitment_at: i64,
    /// The relative's document type (A2); empty = resident ID card.
    pub doc_type: String,
    /// The birth date declared with a document that carries none.
    pub birth_date: String,
}

/// Seed 004 §2: an enterprise as its representative — the signed-in
/// citizen `user`, whose real-name identity the form named — registers it.
/// The enterprise is created (credit code unique) once his face check
/// opens the gate; the password is set afterwards.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RegisterEnterpriseGate {
    pub user: String,
    pub uscc: String,
    pub name: String,
    pub region: String,
    pub rep_name: String,
    pub rep_doc_type: String,
    pub rep_number: String,
    pub rep_phone: String,
}

/// A gate's payload, one type per purpose: the purpose is the variant, so a
/// gate cannot be opened with one purpose and another's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatePayload {
    EnterpriseLogin(LoginGate),
    ApproveAgent(ApproveGate),
    RegisterAgent(RegisterGate),
    KinBind(KinGate),
    RegisterEnterprise(RegisterEnterpriseGate),
}

impl GatePayload {
    pub fn purpose(&self) -> GatePurpose {
        match self {
            GatePayload::EnterpriseLogin(_) => GatePurpose::EnterpriseLogin,
            GatePayload::ApproveAgent(_) => GatePurpose::ApproveAgent,
            GatePayload::RegisterAgent(_) => GatePurpose::RegisterAgent,
            GatePayload::KinBind(_) => GatePurpose::KinBind,
            GatePayload::RegisterEnterprise(_) => GatePurpose::RegisterEnterprise,
        }
    }

    /// The JSON stored in the `payload` column (the bare object of the
    /// purpose's fields, as before the types).
    pub fn to_json(&self) -> String {
        let v = match self {
            GatePayload::EnterpriseLogin(p) => serde_json::to_string(p),
            GatePayload::ApproveAgent(p) => serde_json::to_string(p),
            GatePayload::RegisterAgent(p) => serde_json::to_string(p),
            GatePayload::KinBind(p) => serde_json::to_string(p),
            GatePayload::RegisterEnterprise(p) => serde_json::to_string(p),
        };
        // Structs of strings and integers always serialise.
        v.unwrap_or_default()
    }

    /// Reads a stored payload of `purpose`. An unreadable payload reads as
    /// empty fields, which every step refuses as an expired request (as the
    /// untyped reads did).
    pub fn read(purpose: GatePurpose, json: &str) -> Self {
        fn parse<T: Default + for<'de> Deserialize<'de>>(json: &str) -> T {
            serde_json::from_str(json).unwrap_or_default()
        }
        match purpose {
            GatePurpose::EnterpriseLogin => GatePayload::EnterpriseLogin(parse(json)),
            GatePurpose::ApproveAgent => GatePayload::ApproveAgent(parse(json)),
            GatePurpose::RegisterAgent => GatePayload::RegisterAgent(parse(json)),
            GatePurpose::KinBind => GatePayload::KinBind(parse(json)),
            GatePurpose::RegisterEnterprise => GatePayload::RegisterEnterprise(parse(json)),
        }
    }

    /// The payload of a stored gate; `None` when its purpose is unknown.
    pub fn of(gate: &face_gate::Model) -> Option<Self> {
        GatePurpose::of(gate).map(|p| Self::read(p, &gate.payload))
    }

    /// The enterprise the step is for (none for a kin binding).
    pub fn enterprise(&self) -> Option<&str> {
        match self {
            GatePayload::EnterpriseLogin(p) => Some(&p.enterprise),
            GatePayload::ApproveAgent(p) => Some(&p.enterprise),
            GatePayload::RegisterAgent(p) => Some(&p.enterprise),
            GatePayload::KinBind(_) | GatePayload::RegisterEnterprise(_) => None,
        }
    }
}

pub async fn open(
    db: &Store,
    payload: &GatePayload,
    browser_hash: &str,
    id_number: &str,
    now: i64,
) -> Result<String, DbErr> {
    let id = random_token(18);
    face_gate::ActiveModel {
        id: Set(id.clone()),
        purpose: Set(payload.purpose().as_str().into()),
        browser: Set(browser_hash.into()),
        id_number: Set(id_number.into()),
        payload: Set(payload.to_json()),
        confirmed_at: Set(None),
        consumed_at: Set(None),
        expires_at: Set(now + LIFETIME),
    }
    .insert(db)
    .await?;
    Ok(id)
}

/// The open gate of this browser, if live (for showing its page).
pub async fn find(db: &Store, id: &str, browser_hash: &str, now: i64) -> Result<Option<face_gate::Model>, DbErr> {
    if id.is_empty() || id.len() > 64 {
        return Ok(None);
    }
    Ok(face_gate::Entity::find_by_id(id.to_owned())
        .one(db)
        .await?
        .filter(|g| g.browser == browser_hash && g.expires_at > now && g.consumed_at.is_none()))
}

/// The app reports a passed face check of the person with `id_number`.
/// False when the gate is gone, expired, or waits for someone else.
pub async fn confirm<C: ConnectionTrait>(db: &C, id: &str, id_number: &str, now: i64) -> Result<bool, DbErr> {
    let r = face_gate::Entity::update_many()
        .col_expr(face_gate::Column::ConfirmedAt, Expr::value(now))
        .filter(face_gate::Column::Id.eq(id))
        .filter(face_gate::Column::IdNumber.eq(id_number))
        .filter(face_gate::Column::ConfirmedAt.is_null())
        .filter(face_gate::Column::ExpiresAt.gt(now))
        .exec(db)
        .await?;
    Ok(r.rows_affected == 1)
}

/// Takes a confirmed gate of this browser exactly once and returns its
/// payload, whose variant says which step it finishes.
pub async fn take(db: &Store, id: &str, browser_hash: &str, now: i64) -> Result<Option<GatePayload>, DbErr> {
    let Some(g) = find(db, id, browser_hash, now).await? else {
        return Ok(None);
    };
    let Some(payload) = GatePayload::of(&g).filter(|_| g.confirmed_at.is_some()) else {
        return Ok(None);
    };
    let r = face_gate::Entity::update_many()
        .col_expr(face_gate::Column::ConsumedAt, Expr::value(now))
        .filter(face_gate::Column::Id.eq(id))
        .filter(face_gate::Column::ConsumedAt.is_null())
        .exec(db)
        .await?;
    Ok((r.rows_affected == 1).then_some(payload))
}

/// The gate's row, live or not (for the app side's checks).
pub async fn load(db: &Store, id: &str) -> Result<Option<face_gate::Model>, DbErr> {
    if id.is_empty() || id.len() > 64 {
        return Ok(None);
    }
    face_gate::Entity::find_by_id(id.to_owned()).one(db).await
}

/// The real-name ID number of an account: its bound identity's number, the
/// one the verifier checks the face against.
pub async fn real_name_number(db: &Store, user_id: &str) -> Result<Option<String>, DbErr> {
    Ok(identity::Entity::find_by_id(user_id.to_owned()).one(db).await?.map(|i| i.doc_number))
}

/// What a gate's scan ticket asks of the app: the purpose (`approval` for
/// C3, `face` otherwise), whose app may take it (the account holding the
/// real-name identity the gate waits for — for a kin gate the guardian who
/// opened it; `None` when no account does, so no app can — except an agent
/// registration's, which any signed-in app may then take, see
/// [`any_app_may_scan`]), and what the app shows — masked, never the
/// payload itself.
pub struct GateRequest {
    pub purpose: Purpose,
    pub subject_user_id: Option<String>,
    pub detail: Value,
}

pub async fn ticket_request(db: &Store, gate: &face_gate::Model) -> Result<GateRequest, DbErr> {
    let payload = GatePayload::of(gate);
    // A kin gate is read by the guardian's app (the gate's owner); every
    // other gate by the app of the person whose face it waits for.
    let subject = if let Some(GatePayload::KinBind(k)) = &payload {
        Some(k.user.clone()).filter(|u| !u.is_empty())
    } else {
        identity::Entity::find()
            .filter(identity::Column::DocNumber.eq(gate.id_number.as_str()))
            .one(db)
            .await?
            .map(|i| i.user_id)
    };
    let ent = match payload.as_ref().and_then(GatePayload::enterprise) {
        Some(id) => enterprise::Entity::find_by_id(id.to_owned()).one(db).await?,
        None => None,
    };
    let mut detail = json!({ "action": gate.purpose, "person": mask_id_number(&gate.id_number) });
    if !matches!(payload, Some(GatePayload::KinBind(_))) {
        let (name, uscc) = match (&payload, &ent) {
            // Not registered yet: the name and code the form gave.
            (Some(GatePayload::RegisterEnterprise(r)), _) => (r.name.as_str(), r.uscc.as_str()),
            (_, Some(e)) => (e.name.as_str(), e.uscc.as_str()),
            _ => ("", ""),
        };
        detail["enterprise"] = json!({ "name": name, "uscc": uscc });
    }
    let purpose = match &payload {
        Some(GatePayload::RegisterAgent(r)) => {
            // Whose face the app checks (masked, as the form gave it).
            detail["agent"] = json!({ "name": mask_name(&r.name), "id_number": mask_id_number(&gate.id_number) });
            Purpose::Face
        }
        Some(GatePayload::ApproveAgent(a)) => {
            let agent = match delegation::Entity::find_by_id(a.delegation.clone()).one(db).await? {
                Some(d) => user::Entity::find_by_id(d.grantee_user_id).one(db).await?,
                None => None,
            };
            detail["agent"] = json!({
                "name": agent.as_ref().and_then(|u| u.name.as_deref()).map(mask_name).unwrap_or_default(),
                "id_number": agent.as_ref().and_then(|u| u.id_number.as_deref()).map(mask_id_number).unwrap_or_default(),
            });
            Purpose::Approval
        }
        Some(GatePayload::EnterpriseLogin(l)) => {
            detail["role"] = json!(l.role);
            Purpose::Face
        }
        Some(GatePayload::KinBind(k)) => {
            let guardian = user::Entity::find_by_id(k.user.clone()).one(db).await?;
            detail["guardian"] = json!(guardian.and_then(|u| u.name).as_deref().map(mask_name).unwrap_or_default());
            detail["relation"] = json!(k.relation);
            Purpose::Face
        }
        Some(GatePayload::RegisterEnterprise(_)) | None => Purpose::Face,
    };
    Ok(GateRequest { purpose, subject_user_id: subject, detail })
}

/// What the app got from the face check of the person a gate names (a
/// relative, E2; an agent registering, C2).
#[derive(Debug, PartialEq, Eq)]
pub enum GateFace {
    /// Passed; whose face it was (`relative` or `agent`).
    Pass(&'static str),
    /// No live, unopened kin gate of this account, or agent-registration
    /// gate whose ticket this app holds, behind the ticket.
    NotYours,
    /// Ages 0–6 are never asked for a face (B7).
    NotRequired,
    Refused(Outcome),
    Unavailable,
}

/// Whose face a gate checked through the app waits for: the document as
/// the form declared it.
enum Checked {
    Kin(KinGate),
    Agent(RegisterGate),
}

/// Verification kind of a relative's face checked through the guardian's app.
pub const KIN_FACE: &str = "kin_face";
/// Verification kind of a registering agent's face checked through the app
/// holding his gate's ticket.
pub const AGENT_FACE: &str = "agent_face";

/// Whether a gate ticket that names no account may be read by any
/// signed-in app: an agent-registration gate for a person no account holds
/// (C2). Every other ticket is read only by the account it names.
pub async fn any_app_may_scan(db: &Store, ticket: &scan_ticket::Model) -> Result<bool, DbErr> {
    let Some(gate_id) = ticket.gate_id.as_deref().filter(|_| ticket.subject_user_id.is_none()) else {
        return Ok(false);
    };
    Ok(load(db, gate_id).await?.is_some_and(|g| GatePurpose::of(&g) == Some(GatePurpose::RegisterAgent)))
}

/// The gate behind a scan ticket whose person `user_id`'s app may check, if
/// it is live and unopened: a kin gate this account opened (the guardian),
/// or an agent-registration gate whose ticket this account's app scanned
/// and still holds (undecided, not expired).
async fn checkable_gate(
    db: &Store,
    ticket_id: &str,
    user_id: &str,
    now: i64,
) -> Result<Option<(face_gate::Model, Checked)>, DbErr> {
    if ticket_id.is_empty() || ticket_id.len() > 64 {
        return Ok(None);
    }
    let Some(ticket) = scan_ticket::Entity::find_by_id(ticket_id.to_owned()).one(db).await? else {
        return Ok(None);
    };
    let Some(gate_id) = ticket.gate_id.clone() else { return Ok(None) };
    let holds_ticket =
        ticket.status == "scanned" && ticket.app_user_id.as_deref() == Some(user_id) && ticket.expires_at > now;
    Ok(load(db, &gate_id).await?.filter(|g| g.confirmed_at.is_none() && g.expires_at > now).and_then(|g| {
        match GatePayload::of(&g) {
            Some(GatePayload::KinBind(k)) if k.user == user_id => Some((g, Checked::Kin(k))),
            Some(GatePayload::RegisterAgent(r)) if holds_ticket => Some((g, Checked::Agent(r))),
            _ => None,
        }
    }))
}

/// The app checks the face of the person a gate names, standing in front
/// of the phone: the relative of a kin gate (the guardian's app) or the
/// agent of a registration gate (the app holding its ticket). The verifier
/// is asked about the name and document the gate waits for. The attempt is
/// recorded under the app's account (`kin_face` / `agent_face`) with the
/// gate in `detail`; the sample goes to the verifier and nowhere else.
pub async fn gate_face_check<V: IdentityVerifier>(
    db: &Store,
    verifier: &V,
    user_id: &str,
    ticket_id: &str,
    sample: &FaceSample,
    today: NaiveDate,
    now: i64,
) -> Result<GateFace, DbErr> {
    let Some((gate, checked)) = checkable_gate(db, ticket_id, user_id, now).await? else {
        return Ok(GateFace::NotYours);
    };
    // The card as the form declared it (its type and validity included):
    // what the verifier is asked about.
    let (doc_type, name, valid_from, valid_to, birth_date, kind_of_check, whose) = match &checked {
        Checked::Kin(k) => {
            (&k.doc_type, &k.name, &k.valid_from, &k.valid_to, k.birth_date.as_str(), KIN_FACE, "relative")
        }
        Checked::Agent(r) => (&r.doc_type, &r.name, &r.valid_from, &r.valid_to, "", AGENT_FACE, "agent"),
    };
    let kind = DocumentType::parse(doc_type).unwrap_or(DocumentType::ResidentId);
    let (Ok(number), Ok(name), Ok(validity)) = (
        DocumentNumber::parse(kind, &gate.id_number),
        PersonName::parse(name),
        Validity::parse(valid_from, valid_to, valid_to.is_empty()),
    ) else {
        return Ok(GateFace::NotYours);
    };
    // Rechecked today: a card that expired since the form was sent is
    // refused as an invalid document.
    let doc = match Document::new(number, name, validity, today) {
        Ok(doc) => doc,
        Err(_) => return Ok(GateFace::Refused(Outcome::Expired)),
    };
    // A passport or permit carries no birth date: the one declared with it.
    let declared_young = NaiveDate::parse_from_str(birth_date, "%Y-%m-%d")
        .ok()
        .is_some_and(|b| crate::domain::delegation::kin::age_from(b, today).is_some_and(|a| a <= 6));
    if !face_required(&doc, today) || declared_young {
        return Ok(GateFace::NotRequired);
    }
    let subject =
        format!("{} {} {}", kind.as_str(), mask_doc_name(doc.name.as_str()), mask_number(doc.number.as_str()));
    let detail = format!("gate:{}", gate.id);
    let (outcome, reference, answer) = match verifier.check_face(&doc, sample).await {
        Ok(v) => {
            let answer = if v.outcome == Outcome::Pass { GateFace::Pass(whose) } else { GateFace::Refused(v.outcome) };
            (v.outcome.as_str(), Some(v.reference), answer)
        }
        Err(e) => {
            tracing::warn!("identity verifier ({kind_of_check}): {e}");
            let what = match e {
                VerifierError::Timeout => "timeout",
                VerifierError::CircuitOpen => "circuit_open",
                VerifierError::Unavailable(_) => "unavailable",
            };
            (what, None, GateFace::Unavailable)
        }
    };
    record(db, Some(user_id), kind_of_check, &subject, outcome, reference.as_deref(), Some(&detail), now).await?;
    Ok(answer)
}

/// Whether `user_id`'s app recorded a verifier pass of the person this
/// gate waits for (a relative, an agent) in the last [`FACE_FRESH`]
/// seconds. Runs inside the confirm's transaction.
pub async fn gate_face_passed<C: ConnectionTrait>(
    db: &C,
    user_id: &str,
    gate_id: &str,
    now: i64,
) -> Result<bool, DbErr> {
    Ok(verification::Entity::find()
        .filter(verification::Column::UserId.eq(user_id))
        .filter(verification::Column::Kind.is_in([KIN_FACE, AGENT_FACE]))
        .filter(verification::Column::Outcome.eq("pass"))
        .filter(verification::Column::Detail.eq(format!("gate:{gate_id}")))
        .filter(verification::Column::CreatedAt.gt(now - FACE_FRESH))
        .one(db)
        .await?
        .is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purposes_keep_their_stored_names() {
        use GatePurpose::*;
        for p in [EnterpriseLogin, ApproveAgent, RegisterAgent, KinBind, RegisterEnterprise] {
            assert_eq!(GatePurpose::parse(p.as_str()), Some(p));
        }
        assert_eq!(GatePurpose::parse("face"), None);
    }

    #[test]
    fn payloads_read_rows_written_before_the_types() {
        // Rows as the untyped `json!` payloads wrote them.
        let login = r#"{"enterprise":"e1","user":"u1","role":"agent","delegation":null,"req":"r1"}"#;
        let GatePayload::EnterpriseLogin(l) = GatePayload::read(GatePurpose::EnterpriseLogin, login) else {
            panic!("login payload");
        };
        assert_eq!((l.enterprise.as_str(), l.role.as_str(), l.delegation, l.req.as_str()), ("e1", "agent", None, "r1"));
        let kin = r#"{"user":"g","name":"张三","id_number":"1","relation":"parent","valid_from":"2020-01-01",
            "valid_to":"","commitment_version":"001","commitment_at":42}"#;
        let GatePayload::KinBind(k) = GatePayload::read(GatePurpose::KinBind, kin) else {
            panic!("kin payload");
        };
        assert_eq!((k.user.as_str(), k.valid_to.as_str(), k.commitment_at), ("g", "", 42));
        // Unreadable payloads read as empty fields, which every step refuses.
        assert_eq!(
            GatePayload::read(GatePurpose::ApproveAgent, "not json"),
            GatePayload::ApproveAgent(ApproveGate::default())
        );
    }

    #[test]
    fn payloads_write_the_same_json() {
        let p = GatePayload::RegisterAgent(RegisterGate {
            enterprise: "e".into(),
            name: "n".into(),
            id_number: "i".into(),
            phone: "p".into(),
            agent_password_hash: "h".into(),
            ..Default::default()
        });
        let v: Value = serde_json::from_str(&p.to_json()).unwrap_or_default();
        assert_eq!(
            (&v["enterprise"], &v["name"], &v["id_number"], &v["phone"], &v["agent_password_hash"]),
            (&json!("e"), &json!("n"), &json!("i"), &json!("p"), &json!("h"))
        );
        // A row written before the form's other fields were kept reads with them empty.
        let old = r#"{"enterprise":"e","name":"n","id_number":"i","phone":"p","agent_password_hash":"h"}"#;
        assert_eq!(GatePayload::read(GatePurpose::RegisterAgent, old), p);
        assert_eq!(GatePayload::read(p.purpose(), &p.to_json()), p);
    }
}
