//! Manual gaps (issue 20): every document type on every path (A2).
use crate::accounts::{operator, send_code};
use crate::both;
use crate::identity::{app_with, citizen, sms_step, submit};
use crate::support::*;
use idp::store::entities::{appeal, identity};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

const PASSPORT: [(&str, &str); 5] = [
    ("doc_type", "passport"),
    ("name", "周游"),
    ("number", "EA1234567"),
    ("valid_from", "2020-01-01"),
    ("valid_to", "2030-01-01"),
];

/// A passport holder binds the passport, signs in by its number (any
/// spelling), and a second person files an appeal about that number with
/// a passport as his own document; approved, the number is released.
async fn passport_holder_signs_in_and_appeals(b: Backend) {
    let app = app_with(b, |_| {}).await;
    let client = app.confidential().await;
    let (uid, _, br) = citizen(&app, &client, "13900000501").await;
    let flow = sms_step(&app, &br, "/identity/verify", "13900000501").await;
    let (status, body) = submit(&app, &br, "/identity/verify", &flow, &PASSPORT).await;
    assert_eq!(status, 200, "{body}");

    // Sign-in by document number: lower case and spaces fold to the number on record.
    let found = app.state.users.find_by_login("ea 1234567").await.unwrap().expect("found by passport number");
    assert_eq!(found.id, uid);
    let (code, _) = sign_in(&app, &client, "ea1234567", &[]).await;
    assert!(!code.is_empty());

    // An appeal naming the passport number, filed with a passport (not a resident ID).
    let filer = Browser::new();
    let contact = "13900000502";
    let (_, html) = send_code(&app, &filer, "/appeal", "", contact, &[]).await;
    let code = six_digits(&sink(&app, "sms", contact).await.unwrap());
    let form = [
        ("csrf", hidden(&html, "csrf").unwrap()),
        ("action", "file".to_string()),
        ("kind", "id_number".to_string()),
        ("claimed_value", "ea1234567".to_string()),
        ("name", "周游".to_string()),
        ("id_number", "EA1234567".to_string()),
        ("phone", contact.to_string()),
        ("sms_code", code),
        ("details", "这本护照是我本人的，被他人占用了，请核实。".to_string()),
    ];
    let res = filer.http.post(app.url("/appeal")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let filed = appeal::Entity::find()
        .filter(appeal::Column::ClaimedValue.eq("EA1234567"))
        .one(&app.state.store)
        .await
        .unwrap()
        .expect("the appeal is stored with the normalised number");
    assert_eq!(filed.id_number, "EA1234567");
    let out = operator(&app, &["appeal", "approve", &filed.id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let held = identity::Entity::find()
        .filter(identity::Column::DocNumber.eq("EA1234567"))
        .all(&app.state.store)
        .await
        .unwrap();
    assert!(held.is_empty(), "the approved appeal releases the passport");
    assert!(app.state.users.find_by_login("EA1234567").await.unwrap().is_none());
}
both!(passport_holder_signs_in_and_appeals_both, super::passport_holder_signs_in_and_appeals);
