//! Human text in the portal (issue 19): the authorisations page offers
//! items in words (checkboxes), never a scope to type; plugin pages show
//! dates in the reader's language, no Unix seconds, no enum names, inside
//! the portal frame; legal documents are served and linked where consent
//! is given; face gates and the scan page offer the app on a phone; one
//! ethnicity list. Asserts on element ids and locale keys.
use crate::both;
use crate::factors::{citizen, get, password_sign_in, post, reverify};
use crate::plugin_kit::*;
use crate::support::*;
use idp::domain::delegation;

/// The page's text a reader sees: tags (with their attributes) and the
/// "can't scan?" `<details>` (a signed token) left out.
fn visible(html: &str) -> String {
    let mut html = html.to_string();
    while let (Some(a), Some(b)) = (html.find("<details"), html.find("</details>")) {
        if b < a {
            break;
        }
        html.replace_range(a..b + "</details>".len(), " ");
    }
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// Whether `text` has a run of exactly `n` ASCII digits (a Unix time).
fn digit_run(text: &str, n: usize) -> bool {
    text.split(|c: char| !c.is_ascii_digit()).any(|run| run.len() == n)
}

/// Whether `word` stands alone in `text` (not inside a longer word).
fn has_word(text: &str, word: &str) -> bool {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).any(|w| w == word)
}

fn zh(app: &TestApp, key: &str) -> String {
    app.state.pages.text("zh-CN", key)
}

async fn authorisations_in_words(backend: Backend) {
    let app = spawn(backend).await;
    let alice = citizen(&app, "alice_words", "13800000071").await;
    citizen(&app, "bob_words", "13800000072").await;
    let b = password_sign_in(&app, "alice_words").await;
    reverify(&app, &b, "13800000071").await;
    let (status, html) = get(&b, app.url("/account/authorisations")).await;
    assert_eq!(status, 200);
    // Checkboxes named in words; nothing to type a scope into.
    assert!(html.contains("id=\"authorise-items\""), "{html}");
    for item in delegation::authorisations::GRANTABLE {
        assert!(html.contains(&format!("name=\"share_{item}\"")), "{item}: {html}");
        assert!(html.contains(&zh(&app, &format!("scope_{item}"))), "{item} in words");
    }
    assert!(!html.contains("name=\"scopes\""), "no scope text input: {html}");
    assert!(!has_word(&visible(&html), "openid"), "no scope names: {html}");
    let csrf = hidden(&html, "csrf").unwrap();
    let today = delegation::today(app.state.clock.now()).to_string();
    let base = [
        ("csrf", csrf.as_str()),
        ("action", "grant"),
        ("grantee", "13800000072"),
        ("valid_from", today.as_str()),
        ("valid_to", today.as_str()),
    ];
    // Nothing ticked: told what to fix, what was typed kept.
    let res = post(&b, app.url("/account/authorisations"), &base).await;
    assert_eq!(res.status(), 400);
    let html = res.text().await.unwrap();
    assert!(html.contains(&zh(&app, "authorise_no_scopes")), "{html}");
    assert!(html.contains("value=\"13800000072\""), "the grantee typed is kept: {html}");
    // A scope that is not on the list is never stored.
    let mut odd = base.to_vec();
    odd.push(("scopes", "openid admin"));
    assert_eq!(post(&b, app.url("/account/authorisations"), &odd).await.status(), 400);
    assert!(delegation::granted_by(&app.state.store, &alice, delegation::Kind::Person).await.unwrap().is_empty());
    // Two items ticked: stored as their scopes, listed in words.
    let mut form = base.to_vec();
    form.push(("share_phone", "on"));
    form.push(("share_email", "on"));
    let res = post(&b, app.url("/account/authorisations"), &form).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    let d = delegation::granted_by(&app.state.store, &alice, delegation::Kind::Person).await.unwrap().remove(0);
    assert_eq!(d.scopes, "openid phone email");
    let listed = html.split("class=\"released\">").nth(1).unwrap().split('<').next().unwrap().to_string();
    assert!(listed.contains(&zh(&app, "scope_phone")) && listed.contains(&zh(&app, "scope_email")), "{listed}");
    assert!(!has_word(&visible(&html), "openid") && !has_word(&visible(&html), "phone"), "{html}");
}
both!(authorisations_offer_items_in_words, super::authorisations_in_words);

async fn e_certificate_in_words(backend: Backend) {
    let app = spawn_plugins(backend, &[ECERT], |_, _| {}).await;
    app.state
        .users
        .create(idp::domain::identity::users::NewUser {
            username: "zhang_words".into(),
            password: PASSWORD.into(),
            name: Some("张三".into()),
            id_number: Some("11010519491231002X".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let rp = app.confidential().await;
    let (_, b) = tokens_for(&app, &rp, "zhang_words", "openid").await;
    let base = "/plugins/e-certificate";
    let (_, html) = get(&b, app.url(&format!("{base}/bind?kind=resident_id"))).await;
    let csrf = hidden(&html, "csrf").unwrap();
    let form = [("csrf", csrf.as_str()), ("kind", "resident_id"), ("decision", "allow")];
    assert_eq!(post(&b, app.url(&format!("{base}/bind")), &form).await.status(), 303);
    let enums = ["resident_id", "personal", "kin", "close_contact", "offline"];
    // Details: validity as dates in the locale (the fixture says 2040-01-01).
    let (status, html) = get(&b, app.url(&format!("{base}/cert?kind=resident_id"))).await;
    assert_eq!(status, 200);
    let text = visible(&html);
    assert!(text.contains("2040年01月01日"), "{text}");
    assert!(!digit_run(&text, 10), "no Unix time: {text}");
    assert!(enums.iter().all(|e| !has_word(&text, e)), "no enum names: {text}");
    // The presentation: its expiry as a date and time, never Unix seconds.
    let form = [("csrf", csrf.as_str()), ("kind", "resident_id")];
    let res = post(&b, app.url(&format!("{base}/present")), &form).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    let text = visible(&html);
    let expires = html.split("<time class=\"expires\">").nth(1).unwrap().split('<').next().unwrap();
    assert!(expires.contains('年') && expires.contains(':'), "{expires}");
    assert!(!digit_run(&text, 10), "no Unix time: {text}");
    assert!(enums.iter().all(|e| !has_word(&text, e)), "no enum names: {text}");
    assert!(html.contains("id=\"frame-header\"") && html.contains("id=\"plugin-page\""), "inside the frame");
    // In English, English dates.
    let r = b.http.get(app.url(&format!("{base}/cert?kind=resident_id"))).header("accept-language", "en");
    let text = visible(&r.send().await.unwrap().text().await.unwrap());
    assert!(text.contains("01 Jan 2040"), "{text}");
}
both!(e_certificate_shows_dates_and_words, super::e_certificate_in_words);

async fn health_code_in_frame(backend: Backend) {
    let app = spawn_plugins(backend, &[HEALTH], |_, _| {}).await;
    crate::health_code::citizen(&app, "zhang_frame", "张三", crate::health_code::ZHANG_ID).await;
    let b = crate::health_code::signed_in(&app, "zhang_frame").await;
    let (status, html) = crate::health_code::page(&b, &app, "/").await;
    assert_eq!(status, 200);
    for id in
        ["id=\"frame-header\"", "id=\"frame-menu\"", "id=\"plugin-page\"", "id=\"code-switch\"", "id=\"hc-renew\""]
    {
        assert!(html.contains(id), "{id}: {html}");
    }
    // The code switcher is a tab bar; the live clock is ticked by the
    // theme's same-origin script, never an inline one.
    assert!(html.contains("<ul class=\"tabs\">") && html.contains("aria-current=\"page\""), "{html}");
    assert!(html.contains("data-clock") && html.contains("src=\"/static/portal.js\""), "{html}");
    assert!(!html.contains("<script>") && !html.contains("<script type"), "no inline script: {html}");
    // The renewal is not the red primary button on a green code.
    let renew = html.split("id=\"hc-renew\"").next().unwrap().rsplit("<form").next().unwrap();
    assert!(renew.contains("class=\"renew\" data-colour=\"green\""), "{renew}");
    let text = visible(&html);
    assert!(!digit_run(&text, 10), "no Unix time: {text}");
    for e in ["personal", "kin", "offline"] {
        assert!(!has_word(&text, e), "no enum name {e}: {text}");
    }
    // The offline code's page: times in words; the picture carries no English.
    let (_, html) = crate::health_code::page(&b, &app, "/offline").await;
    let text = visible(&html);
    assert!(!has_word(&text, "GEN") && !has_word(&text, "EXP") && !digit_run(&text, 10), "{text}");
    assert!(html.contains("id=\"plugin-page\""));
    // Without a real name, the way on is real-name verification.
    crate::factors::citizen(&app, "no_name_hc", "13800000073").await;
    let nb = password_sign_in(&app, "no_name_hc").await;
    let (status, html) = crate::health_code::page(&nb, &app, "/").await;
    assert_eq!(status, 404);
    assert!(html.contains("id=\"hc-next\" href=\"/identity\""), "{html}");
    // The admin log names the holder's own page in words, not `user:<id>`.
    let r = api().get(app.url("/plugins/health-code/admin/logs")).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    let html = r.text().await.unwrap();
    assert!(html.contains("data-kind=\"show\""), "{html}");
    let text = visible(&html);
    assert!(!text.contains("user:") && !has_word(&text, "personal") && !has_word(&text, "offline"), "{text}");
}
both!(health_code_page_in_the_frame, super::health_code_in_frame);

async fn legal_documents(backend: Backend) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = temp_dir();
    let mut config = config_for(&backend, port, &dir).await;
    let english = idp::config::DocumentSource { text: Some("# Our terms\n\n- <b>one</b>".into()), file: None };
    config.portal.terms.insert("en".into(), english);
    let app = spawn_with(config, listener, dir).await;
    let b = Browser::new();
    for doc in ["terms", "privacy", "app"] {
        let (status, html) = get(&b, app.url(&format!("/legal/{doc}"))).await;
        assert_eq!(status, 200, "{doc}");
        assert!(html.contains(&format!("id=\"legal-{doc}\"")) && html.contains("id=\"frame-header\""), "{html}");
        assert!(html.contains(&zh(&app, &format!("legal_{doc}_title"))), "{doc}: {html}");
    }
    assert_eq!(get(&b, app.url("/legal/other")).await.0, 404);
    // A configured text, escaped.
    let r = b.http.get(app.url("/legal/terms")).header("accept-language", "en").send().await.unwrap();
    let html = r.text().await.unwrap();
    assert!(html.contains("<h2>Our terms</h2>") && html.contains("<li>&lt;b&gt;one&lt;/b&gt;</li>"), "{html}");
    // Linked where consent is given: registration and the consent page.
    let (_, html) = get(&b, app.url("/register")).await;
    assert!(html.contains("id=\"register-terms\" href=\"/legal/terms\""), "{html}");
    assert!(html.contains("id=\"register-privacy\" href=\"/legal/privacy\""), "{html}");
    app.user("consent_legal").await;
    let rp = app.confidential().await;
    let (html, _) =
        until_consent(&app, &Browser::new(), &auth_url(&app, &rp, &[("scope", "openid profile")]), "consent_legal")
            .await;
    assert!(html.contains("id=\"link-terms\" href=\"/legal/terms\""), "{html}");
    assert!(html.contains("id=\"link-privacy\" href=\"/legal/privacy\""), "{html}");
    // The agent registration form links them too.
    let (_, html) = get(&b, app.url("/register/agent")).await;
    assert!(html.contains("href=\"/legal/terms\""), "{html}");
}
both!(legal_pages_served_and_linked, super::legal_documents);

async fn phone_and_forms(backend: Backend) {
    let app = spawn(backend).await;
    let client = app.confidential().await;
    // A kin face gate: the app link beside the QR, the guardian's app named
    // as the one that scans, steps that are no sign-in, and a cancel.
    app.user("guardian_words").await;
    crate::face_gates::real_person(&app, "elder_words", crate::face_gates::LI).await;
    let b = Browser::new();
    crate::delegation::sign_in_with_browser(&app, &b, &client, "guardian_words").await;
    let gate =
        crate::face_gates::open_kin_gate(&app, &b, crate::face_gates::LI.0, crate::face_gates::LI.1, "parent").await;
    let page = crate::face_gates::gate_page(&b, &gate).await;
    // Attribute values as the browser reads them (the templates escape `/`).
    let html = &page.html.replace("&#x2F;", "/").replace("&amp;", "&");
    let ticket_url = app.url(&format!("/scan/t/{}", page.ticket));
    let encoded: String = url::form_urlencoded::byte_serialize(ticket_url.as_bytes()).collect();
    let link = format!("id=\"scan-app-link\"><a class=\"button\" href=\"idp-citizen://scan?url={encoded}\"");
    assert!(html.contains(&link), "{link} in {html}");
    assert!(html.contains(&zh(&app, "face_hint_kin_bind")), "{html}");
    assert!(html.contains("data-for=\"gate\"") && !html.contains(&zh(&app, "scan_step_confirm")), "{html}");
    assert!(html.contains("id=\"face-cancel\" href=\"/account/kin\""), "{html}");
    // The scan-to-login page names the app, links its download, counts down.
    let (_, html) = get(&Browser::new(), app.url("/login/scan")).await;
    let html = html.replace("&#x2F;", "/");
    for id in [
        "id=\"scan-app-name\"",
        "id=\"scan-download\"",
        "id=\"scan-countdown\" data-countdown=\"",
        "id=\"scan-app-link\"",
    ] {
        assert!(html.contains(id), "{id}: {html}");
    }
    // Enterprise sign-in: a real tab bar, the agent field only for agents.
    let (_, html) = get(&Browser::new(), app.url("/login/enterprise")).await;
    let html = html.replace("&#x2F;", "/");
    assert!(html.contains("id=\"enterprise-tabs\""), "{html}");
    assert!(
        html.contains("id=\"tab-legal\" href=\"/login/enterprise?req=\" class=\"on\" aria-current=\"page\""),
        "{html}"
    );
    assert!(html.contains("class=\"agent-only\""), "{html}");
    // One ethnicity list, the same select on every form that asks it.
    let (_, agent_form) = get(&Browser::new(), app.url("/register/agent")).await;
    let (_, profile) = get(&b, app.url("/account/profile")).await;
    for html in [&agent_form, &profile] {
        assert!(
            html.contains("<select id=\"ethnicity\" name=\"ethnicity\" class=\"ethnicity\" data-shared=\"ethnicity\">")
        );
        let options = html.split("data-shared=\"ethnicity\">").nth(1).unwrap().split("</select>").next().unwrap();
        assert_eq!(options.matches("<option value=\"").count(), 57, "56 groups and none: {options}");
    }
    // The citizen's own account name, unmasked to them.
    let (_, html) = get(&b, app.url("/account")).await;
    assert!(html.contains("id=\"own-username\">guardian_words<"), "{html}");
}
both!(face_gate_offers_the_app_on_a_phone, super::phone_and_forms);

/// A person acting for an enterprise consents in its name: the consent
/// page names the enterprise and the role.
async fn consent_for_enterprise(backend: Backend) {
    use crate::delegation::{ENT_PASSWORD, USCC, enterprise, start_enterprise_sign_in};
    use crate::face_gates::{ZHANG, pass_face, real_person};
    let app = spawn(backend).await;
    let client = app.confidential().await;
    real_person(&app, "rep_words", ZHANG).await;
    app.user("stranger_words").await;
    enterprise(&app, USCC, ZHANG.0, ZHANG.1).await;
    let b = Browser::new();
    let form = [("uscc", USCC), ("role", "representative"), ("password", ENT_PASSWORD)];
    let next = start_enterprise_sign_in(&app, &b, &client, &form).await.unwrap();
    let (_, done) = pass_face(&app, &b, &next, "rep_words", "stranger_words").await;
    let mut url = location(&done).expect("the sign-in continues by itself");
    let html = loop {
        let full = if url.starts_with('/') { app.url(&url) } else { url.clone() };
        let res = b.http.get(&full).send().await.unwrap();
        match location(&res) {
            Some(next) => url = next,
            None => {
                assert!(full.contains("/consent"), "the consent page: {full}");
                break res.text().await.unwrap();
            }
        }
    };
    assert!(html.contains("id=\"consent-acting\" data-role=\"representative\""), "{html}");
    assert!(html.contains("示例科技有限公司"), "{html}");
}
both!(consent_names_the_enterprise, super::consent_for_enterprise);
