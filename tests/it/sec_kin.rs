//! Kin binding proof (E2; docs/security.md, "Proof before binding"): every binding — a child of 0–6 included — needs the
//! verifier's name + ID number check and the guardian's accepted
//! commitment, recorded with the binding; the relative's other binders
//! hear of a newcomer by SMS; a binder or the relative reports a
//! malicious binding and an operator removes it from the command line.
use crate::both;
use crate::delegation::{id_born, sign_in_with_browser};
use crate::face_gates::{BABY, LI, accept_kin_commitment, open_kin_gate, pass_kin_face, post_kin_form, real_person};
use crate::support::*;
use idp::domain::delegation::kin;
use idp::ports::verifier::{
    BankCardCheck, FaceSample, IdentityVerifier, InPersonClaims, Outcome, Verdict, VerifierError,
};
use idp::store::entities::{dev_message, kin_commitment, kin_report};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

/// A verifier that passes everyone: for tests of the binding's own rules
/// (slots, limits, races) with generated ID numbers the sandbox does not
/// know. Pages and APIs always use the configured verifier.
pub struct PassAll;

impl IdentityVerifier for PassAll {
    async fn check_id(&self, _: &idp::domain::identity::documents::Document) -> Result<Verdict, VerifierError> {
        Ok(Verdict { outcome: Outcome::Pass, reference: "TEST-PASS".into() })
    }
    async fn check_face(
        &self,
        _: &idp::domain::identity::documents::Document,
        _: &FaceSample,
    ) -> Result<Verdict, VerifierError> {
        Ok(Verdict { outcome: Outcome::Pass, reference: "TEST-PASS".into() })
    }
    async fn check_bank_card(&self, _: &BankCardCheck) -> Result<Verdict, VerifierError> {
        Ok(Verdict { outcome: Outcome::Pass, reference: "TEST-PASS".into() })
    }
    async fn check_in_person(&self, _: &str, _: i64) -> Result<Result<InPersonClaims, Outcome>, VerifierError> {
        Ok(Err(Outcome::BadAssertion))
    }
}

/// `req` with its proof (a verifier pass from [`PassAll`] and the current
/// commitment accepted by `guardian`): what `kin::bind` accepts.
pub async fn proven(app: &TestApp, guardian: &str, req: kin::KinRequest) -> kin::KinRequest {
    let now = app.state.clock.now();
    let commitment = kin::Commitment::accept(true, kin::COMMITMENT_VERSION, now).unwrap();
    kin::prove(&PassAll, &app.state.store, guardian, req, commitment, now).await.unwrap().unwrap()
}

/// An account with a phone (kin notices go there), signed in.
async fn guardian(app: &TestApp, client: &TestClient, username: &str, phone: &str) -> (String, Browser) {
    let created = app
        .state
        .users
        .create(idp::domain::identity::users::NewUser {
            username: username.into(),
            password: PASSWORD.into(),
            name: Some("王五".into()),
            phone: Some(phone.into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let b = Browser::new();
    sign_in_with_browser(app, &b, client, username).await;
    (created.sub, b)
}

fn text(app: &TestApp, key: &str) -> String {
    app.state.pages.text("zh-CN", key)
}

async fn relatives(app: &TestApp, user: &str) -> Vec<String> {
    let list = kin::relatives_of(&app.state.store, user, app.state.clock.now()).await.unwrap();
    list.into_iter().map(|r| r.id_number).collect()
}

/// The kin page's commitment form posted straight away (skipping the
/// form's first step), with these fields.
async fn post_commit(app: &TestApp, b: &Browser, fields: &[(&str, &str)]) -> reqwest::Response {
    let page = b.http.get(app.url("/account/kin")).send().await.unwrap().text().await.unwrap();
    let csrf = hidden(&page, "csrf").unwrap();
    let mut form = vec![("csrf", csrf.as_str()), ("action", "commit")];
    form.extend_from_slice(fields);
    b.http.post(app.url("/account/kin")).form(&form).send().await.unwrap()
}

/// A stranger who types a name and ID number that do not belong together
/// is refused by the authority's check — a child of 0–6 (no face check
/// to stop him) and an elder alike — before any commitment page or face
/// gate, and also when he posts the commitment step directly; and he
/// cannot go on guessing.
async fn stranger_refused(backend: Backend) {
    let app = spawn(backend).await;
    let client = app.confidential().await;
    let (g, b) = guardian(&app, &client, "stranger_k", "13900000101").await;
    let refused = text(&app, "kin_not_verified");
    // A generated child's number the authority has no record of, a real
    // child's number with another name, an elder's number with another name.
    let unknown_child = {
        use chrono::Datelike;
        let today = idp::domain::delegation::today(app.state.clock.now());
        id_born(&format!("{:04}0101", today.year() - 3), 77)
    };
    for (name, number) in [("小明", unknown_child.as_str()), ("小红", BABY.1), ("李四", LI.1)] {
        let res = post_kin_form(&app, &b, name, number, "child").await;
        assert_eq!(res.status(), 400, "{name} {number}");
        let html = res.text().await.unwrap();
        assert!(html.contains(&refused), "{html}");
        assert!(!html.contains("id=\"kin-commitment\""), "no commitment page: {html}");
    }
    // Straight to the commitment step with "I accept": still checked.
    let card = crate::face_gates::kin_card(&app, BABY.1);
    let mut fields = vec![
        ("name", "小红"),
        ("id_number", BABY.1),
        ("relation", "child"),
        ("accept", "on"),
        ("version", kin::COMMITMENT_VERSION),
    ];
    fields.extend(card.iter().map(|(k, v)| (*k, v.as_str())));
    let res = post_commit(&app, &b, &fields).await;
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains(&refused));
    assert!(relatives(&app, &g).await.is_empty(), "nothing bound");
    use idp::store::entities::face_gate as gate_e;
    assert!(gate_e::Entity::find().all(&app.state.store).await.unwrap().is_empty(), "no face gate opened");
    // Each check is recorded under the guardian, masked.
    use idp::store::entities::verification;
    let rows = verification::Entity::find()
        .filter(verification::Column::UserId.eq(g.as_str()))
        .filter(verification::Column::Kind.eq(kin::KIN_ID))
        .all(&app.state.store)
        .await
        .unwrap();
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert!(rows.iter().all(|r| r.outcome == "mismatch" && !r.subject.contains(BABY.1)), "{rows:?}");
    // Not an oracle: after five unconfirmed pairs in a day even a right
    // pair is refused without asking the authority; a day later it binds.
    let res = post_kin_form(&app, &b, "小刚", BABY.1, "child").await;
    assert!(res.text().await.unwrap().contains(&refused));
    let res = post_kin_form(&app, &b, BABY.0, BABY.1, "child").await;
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains(&text(&app, "kin_too_many_attempts")));
    app.state.clock.advance(24 * 3600 + 1);
    let b = Browser::new();
    sign_in_with_browser(&app, &b, &client, "stranger_k").await;
    let res = post_kin_form(&app, &b, BABY.0, BABY.1, "child").await;
    assert_eq!(res.status(), 200, "a day later the right pair is checked again");

    // The domain's binding refuses a request that carries no proof, at any
    // age: no entry path can bind around the check.
    let now = app.state.clock.now();
    let req = kin::check("小明", &unknown_child, "child", &crate::face_gates::kin_card_term(&app, &unknown_child), now)
        .unwrap();
    let r = kin::bind(&app.state.store, &g, None, &req, false, now).await.unwrap();
    assert_eq!(r.unwrap_err(), kin::KinRefusal::NotVerified);
    let r = kin::bind(&app.state.store, &g, None, &proven(&app, &g, req).await, false, now).await.unwrap();
    assert!(r.is_ok(), "a proven request binds");
}
both!(kin_stranger_refused_by_verifier_check, super::stranger_refused);

/// The commitment (承诺书) comes after the verifier's pass: without "I
/// accept", or for a text that is not the current one, nothing is bound.
/// Accepted, the binding carries who accepted, when, and which text —
/// for a child (bound at once) and an elder (after the face check).
async fn commitment_required(backend: Backend) {
    let app = spawn(backend).await;
    let client = app.confidential().await;
    let (g, b) = guardian(&app, &client, "parent_k", "13900000102").await;
    let res = post_kin_form(&app, &b, BABY.0, BABY.1, "child").await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(page.contains("id=\"kin-commitment\""), "{page}");
    assert!(page.contains(&text(&app, "kin_commit_text")), "{page}");
    assert!(relatives(&app, &g).await.is_empty(), "the form alone binds nothing");

    let card = crate::face_gates::kin_card(&app, BABY.1);
    let base: Vec<(&str, &str)> = [("name", BABY.0), ("id_number", BABY.1), ("relation", "child")]
        .into_iter()
        .chain(card.iter().map(|(k, v)| (*k, v.as_str())))
        .collect();
    let refused = text(&app, "kin_commitment_required");
    // Not accepted; accepted but for another text.
    let mut stale = base.clone();
    stale.extend([("accept", "on"), ("version", "kin-commitment-1999")]);
    let mut unticked = base.clone();
    unticked.push(("version", kin::COMMITMENT_VERSION));
    for fields in [unticked, stale] {
        let res = post_commit(&app, &b, &fields).await;
        assert_eq!(res.status(), 400);
        assert!(res.text().await.unwrap().contains(&refused));
    }
    assert!(relatives(&app, &g).await.is_empty(), "no commitment, no binding");

    let accepted_at = app.state.clock.now();
    let res = accept_kin_commitment(&app, &b, &page).await;
    let (status, html) = (res.status(), res.text().await.unwrap());
    assert_eq!(status, 200, "{html}");
    assert!(html.contains(&text(&app, "kin_bound")), "{html}");
    assert_eq!(relatives(&app, &g).await, [BABY.1]);
    let rows = kin_commitment::Entity::find().all(&app.state.store).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].user_id.as_str(), rows[0].text_version.as_str()), (g.as_str(), kin::COMMITMENT_VERSION));
    assert!(rows[0].accepted_at >= accepted_at && rows[0].verifier_reference.starts_with("SBX-"), "{rows:?}");

    // An elder: the commitment, then the face gate; the binding records
    // the commitment accepted before the face check.
    let gate = open_kin_gate(&app, &b, LI.0, LI.1, "parent").await;
    assert!(!relatives(&app, &g).await.contains(&LI.1.to_string()));
    let (_, done) = pass_kin_face(&app, &b, &gate, "parent_k").await;
    assert_eq!(done.status(), 200);
    assert!(relatives(&app, &g).await.contains(&LI.1.to_string()));
    assert_eq!(kin_commitment::Entity::find().all(&app.state.store).await.unwrap().len(), 2);
}
both!(kin_no_commitment_no_binding, super::commitment_required);

/// Seed 001 lets three users bind one relative; those already bound hear
/// by SMS (the gateway's own `kin_notice` purpose) when someone new binds.
async fn binders_notified(backend: Backend) {
    let app = spawn(backend).await;
    let client = app.confidential().await;
    let (_, mother) = guardian(&app, &client, "mother_k", "13900000103").await;
    let (_, father) = guardian(&app, &client, "father_k", "13900000104").await;
    for b in [&mother, &father] {
        let page = post_kin_form(&app, b, BABY.0, BABY.1, "child").await.text().await.unwrap();
        assert_eq!(accept_kin_commitment(&app, b, &page).await.status(), 200);
    }
    let expected = text(&app, "sms_kin_new_binder").replace("{relative}", &kin::mask_name(BABY.0));
    assert_eq!(sink(&app, "sms", "13900000103").await.as_deref(), Some(expected.as_str()));
    let purposes: Vec<String> = dev_message::Entity::find()
        .filter(dev_message::Column::Recipient.eq("13900000103"))
        .all(&app.state.store)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.purpose)
        .collect();
    assert_eq!(purposes, ["kin_notice"]);
    assert_eq!(sink(&app, "sms", "13900000104").await, None, "the newcomer is not told of himself");
}
both!(kin_existing_binder_gets_sms, super::binders_notified);

/// Runs the `idp` binary against the test's database, as an operator.
fn operator(app: &TestApp, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_idp"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("IDP_DATA_DIR", &app.dir)
        .env("IDP_DATABASE_URL", &app.database_url)
        .env("IDP_MASTER_KEY", "7f".repeat(32))
        .env("IDP_LOG", "warn")
        .args(args)
        .output()
        .unwrap()
}

async fn reports(app: &TestApp) -> Vec<kin_report::Model> {
    kin_report::Entity::find().all(&app.state.store).await.unwrap()
}

/// A guardian reports a stranger's binding of his child; an unrelated
/// user cannot; the operator lists the report and removes the binding,
/// which is ended at once (the 24-hour rule is the binder's, not the
/// operator's) and both sides are told. The relative himself, once his
/// account holds his identity, reports a binding of him too; a dismissal
/// keeps it.
async fn report_and_remove(backend: Backend) {
    let app = spawn(backend).await;
    let client = app.confidential().await;
    let (mother_id, mother) = guardian(&app, &client, "mother_r", "13900000105").await;
    let (stranger, strange_b) = guardian(&app, &client, "stranger_r", "13900000106").await;
    let (_, nosy) = guardian(&app, &client, "nosy_r", "13900000107").await;
    for b in [&mother, &strange_b] {
        let page = post_kin_form(&app, b, BABY.0, BABY.1, "child").await.text().await.unwrap();
        assert_eq!(accept_kin_commitment(&app, b, &page).await.status(), 200);
    }
    let binding =
        kin::relatives_of(&app.state.store, &stranger, app.state.clock.now()).await.unwrap()[0].relation_id.clone();
    // The mother sees the other binding of her child, and reports it.
    let page = mother.http.get(app.url("/account/kin")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains(&format!("id=\"kin-other-{binding}\"")), "{page}");
    let report = |b: &Browser, id: String| {
        let b = b.http.clone();
        let app = &app;
        async move {
            let page = b.get(app.url("/account/kin")).send().await.unwrap().text().await.unwrap();
            let csrf = hidden(&page, "csrf").unwrap();
            let form = [("csrf", csrf), ("action", "report".into()), ("id", id), ("reason", "不认识此人".into())];
            let res = b.post(app.url("/account/kin")).form(&form).send().await.unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        }
    };
    // Someone with no tie to the child may not.
    let (status, html) = report(&nosy, binding.clone()).await;
    assert_eq!(status, 400, "{html}");
    assert!(reports(&app).await.is_empty());
    let (status, html) = report(&mother, binding.clone()).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains(&text(&app, "kin_reported")), "{html}");
    let (status, html) = report(&mother, binding.clone()).await;
    assert_eq!(status, 400, "once: {html}");
    assert!(html.contains(&text(&app, "kin_already_reported")), "{html}");

    // The operator's queue, then the removal.
    let out = operator(&app, &["kin", "reports", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(
        (listed[0]["delegation_id"].as_str(), listed[0]["status"].as_str()),
        (Some(binding.as_str()), Some("pending"))
    );
    let id = listed[0]["id"].as_str().unwrap().to_string();
    assert!(!operator(&app, &["kin", "report-decide", &id]).status.success(), "--remove or --dismiss");
    let out = operator(&app, &["kin", "report-decide", &id, "--remove"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!operator(&app, &["kin", "report-decide", &id, "--dismiss"]).status.success(), "decided once");
    assert!(relatives(&app, &stranger).await.is_empty(), "unbound at once");
    assert_eq!(reports(&app).await[0].status, "removed");
    let relative = kin::mask_name(BABY.0);
    let told = |key: &str| text(&app, key).replace("{relative}", &relative);
    assert_eq!(sink(&app, "sms", "13900000106").await, Some(told("sms_kin_binding_removed")));
    assert_eq!(sink(&app, "sms", "13900000105").await, Some(told("sms_kin_report_removed")));
    // The freed slot: the stranger's page no longer lists the child.
    let page = strange_b.http.get(app.url("/account/kin")).send().await.unwrap().text().await.unwrap();
    assert!(!page.contains(&format!("id=\"kin-{binding}\"")), "{page}");

    // The relative himself (李秀, real-name verified) reports a binding of
    // him; the operator dismisses it and the binding stays.
    real_person(&app, "elder_r", LI).await;
    let gate = open_kin_gate(&app, &mother, LI.0, LI.1, "parent").await;
    assert_eq!(pass_kin_face(&app, &mother, &gate, "mother_r").await.1.status(), 200);
    let elder = Browser::new();
    sign_in_with_browser(&app, &elder, &client, "elder_r").await;
    let of_li = kin::relatives_of(&app.state.store, &mother_id, app.state.clock.now()).await.unwrap();
    let li_binding = of_li.iter().find(|r| r.id_number == LI.1).unwrap().relation_id.clone();
    assert_eq!(report(&elder, li_binding.clone()).await.0, 200);
    let pending: Vec<_> = reports(&app).await.into_iter().filter(|r| r.status == "pending").collect();
    assert_eq!(pending.len(), 1);
    let out = operator(&app, &["kin", "report-decide", &pending[0].id, "--dismiss"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(relatives(&app, &mother_id).await.contains(&LI.1.to_string()), "a dismissal keeps the binding");
}
both!(kin_report_operator_removes_binding, super::report_and_remove);
