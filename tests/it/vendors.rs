//! Real providers behind the ports (issue 18): each adapter runs against a
//! local fake on loopback that implements the vendor's documented protocol,
//! signature checks included, so a request signed wrongly is refused as the
//! vendor would refuse it.
use crate::both;
use crate::support::*;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use idp::config::Config;
use idp::ports::sms::SmsPurpose;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// The server with `tweak` applied to its configuration.
pub(crate) async fn spawn_tuned(backend: Backend, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = temp_dir();
    let mut config = config_for(&backend, port, &dir).await;
    tweak(&mut config);
    spawn_with(config, listener, dir).await
}

/// Serves `router` on a free loopback port; its base URL.
pub(crate) async fn serve_fake(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    base
}

// ---------------------------------------------------------------- SMS

const KEY_ID: &str = "LTAI-test-key";
const SECRET: &str = "vendor-secret-0123456789";
const SIGN: &str = "统一身份认证";

/// What a fake SMS vendor saw: every call (idempotency key, nonce) and the
/// messages it really delivered; `script` holds the answers to give next
/// (then "OK").
#[derive(Default)]
struct SmsFake {
    attempts: Vec<(String, String)>,
    delivered: Vec<(String, Value)>,
    script: Vec<&'static str>,
    nonces: std::collections::HashSet<String>,
    /// The `X-Request-Id` each call carried (the provider request it served).
    request_ids: Vec<String>,
}

type Shared = Arc<Mutex<SmsFake>>;

/// Aliyun `SendSms` as documented: RPC GET, HMAC-SHA1 over the sorted,
/// encoded parameters; nonce single use; `OutId` echoed in receipts.
async fn aliyun_fake(State(fake): State<Shared>, headers: HeaderMap, uri: axum::http::Uri) -> axum::response::Response {
    if let Some(id) = headers.get("x-request-id").and_then(|v| v.to_str().ok()) {
        fake.lock().unwrap().request_ids.push(id.to_string());
    }
    let query = uri.query().unwrap_or("");
    let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
    let refuse = |status: StatusCode, code: &str| (status, axum::Json(json!({ "Code": code, "Message": code })));
    for required in [
        "AccessKeyId",
        "Action",
        "Format",
        "SignatureMethod",
        "SignatureNonce",
        "SignatureVersion",
        "Timestamp",
        "Version",
        "PhoneNumbers",
        "SignName",
        "TemplateCode",
        "TemplateParam",
    ] {
        if get(required).is_empty() {
            return refuse(StatusCode::BAD_REQUEST, "MissingParameter").into_response();
        }
    }
    if get("AccessKeyId") != KEY_ID {
        return refuse(StatusCode::NOT_FOUND, "InvalidAccessKeyId.NotFound").into_response();
    }
    let expected = idp::ports::sms::aliyun::signature("GET", &params, SECRET);
    if get("Signature") != expected || get("SignatureMethod") != "HMAC-SHA1" || get("Action") != "SendSms" {
        return refuse(StatusCode::BAD_REQUEST, "SignatureDoesNotMatch").into_response();
    }
    if chrono::NaiveDateTime::parse_from_str(&get("Timestamp"), "%Y-%m-%dT%H:%M:%SZ").is_err() {
        return refuse(StatusCode::BAD_REQUEST, "InvalidTimeStamp.Format").into_response();
    }
    let mut f = fake.lock().unwrap();
    if !f.nonces.insert(get("SignatureNonce")) {
        return refuse(StatusCode::BAD_REQUEST, "SignatureNonceUsed").into_response();
    }
    f.attempts.push((get("OutId"), get("SignatureNonce")));
    let answer = if f.script.is_empty() { "OK" } else { f.script.remove(0) };
    match answer {
        "OK" => {
            if get("SignName") != SIGN {
                return refuse(StatusCode::BAD_REQUEST, "isv.SMS_SIGNATURE_ILLEGAL").into_response();
            }
            let params: Value = serde_json::from_str(&get("TemplateParam")).unwrap_or_default();
            assert!(params.as_object().unwrap().values().all(Value::is_string), "Aliyun wants string params");
            f.delivered.push((format!("{}:{}", get("PhoneNumbers"), get("TemplateCode")), params));
            axum::Json(json!({ "Code": "OK", "Message": "OK", "BizId": "900619746936498440^0", "RequestId": "r" }))
                .into_response()
        }
        "ServiceUnavailable" => refuse(StatusCode::SERVICE_UNAVAILABLE, answer).into_response(),
        code => axum::Json(json!({ "Code": code, "Message": code, "RequestId": "r" })).into_response(),
    }
}

/// Tencent Cloud `SendSms` as documented: JSON POST, TC3-HMAC-SHA256 over
/// `content-type;host` and the payload, errors in `Response.Error`.
async fn tencent_fake(State(fake): State<Shared>, headers: HeaderMap, body: String) -> axum::response::Response {
    let h = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let error = |code: &str| {
        axum::Json(json!({ "Response": { "Error": { "Code": code, "Message": code }, "RequestId": "r" } }))
    };
    let Ok(ts) = h("x-tc-timestamp").parse::<i64>() else { return error("MissingParameter").into_response() };
    if h("x-tc-action") != "SendSms"
        || h("x-tc-version") != "2021-01-11"
        || h("content-type") != idp::ports::sms::tencent::CONTENT_TYPE
    {
        return error("InvalidAction").into_response();
    }
    let expected = idp::ports::sms::tencent::authorization(KEY_ID, SECRET, "sms", &h("host"), &body, ts);
    if h("authorization") != expected {
        return error("AuthFailure.SignatureFailure").into_response();
    }
    let req: Value = serde_json::from_str(&body).unwrap();
    let mut f = fake.lock().unwrap();
    let session = req["SessionContext"].as_str().unwrap_or_default().to_string();
    f.attempts.push((session, ts.to_string()));
    let answer = if f.script.is_empty() { "Ok" } else { f.script.remove(0) };
    if answer.starts_with("InternalError") {
        return error(answer).into_response();
    }
    let phone = req["PhoneNumberSet"][0].as_str().unwrap_or_default().to_string();
    if answer == "Ok" {
        assert_eq!(req["SmsSdkAppId"], "1400000001");
        assert_eq!(req["SignName"], SIGN);
        f.delivered.push((format!("{phone}:{}", req["TemplateId"].as_str().unwrap()), req["TemplateParamSet"].clone()));
    }
    let status = json!({ "SerialNo": "s", "PhoneNumber": phone, "Fee": 1, "SessionContext": req["SessionContext"],
        "Code": answer, "Message": answer, "IsoCode": "CN" });
    axum::Json(json!({ "Response": { "SendStatusSet": [status], "RequestId": "r" } })).into_response()
}

async fn sms_app(backend: Backend, gateway: &str, secret: &str) -> (TestApp, Shared) {
    let fake: Shared = Arc::default();
    let router = if gateway == "aliyun" {
        axum::Router::new().route("/", axum::routing::get(aliyun_fake))
    } else {
        axum::Router::new().route("/", axum::routing::post(tencent_fake))
    };
    let base = serve_fake(router.with_state(fake.clone())).await;
    let (gateway, secret) = (gateway.to_string(), secret.to_string());
    let app = spawn_tuned(backend, move |c| {
        c.sms.gateway = gateway;
        c.sms.url = Some(format!("{base}/"));
        c.sms.access_key_id = Some(KEY_ID.into());
        c.sms.access_key_secret = Some(secret);
        c.sms.sign_name = Some(SIGN.into());
        c.sms.sdk_app_id = Some("1400000001".into());
        // The register page's captcha is readable without the dev gateway.
        c.captcha_record_answers = true;
        c.sms.receipt_token = Some("receipt-secret".into());
        c.sms.templates = [("login", "SMS_1001"), ("register", "SMS_1002")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    })
    .await;
    (app, fake)
}

async fn send(app: &TestApp, phone: &str) -> Result<(), idp::domain::authn::sms_codes::SendError> {
    app.state.sms_codes.send(phone, SmsPurpose::Login, "198.51.100.7", |c| format!("验证码 {c}")).await
}

/// A code goes out once through the vendor and signs in; the vendor's
/// per-phone limit is reported as "too frequent" and delivers nothing; a
/// "not taken, try again" answer is retried with the same idempotency key
/// and delivers exactly once; a wrongly signed request is refused.
async fn sms_through(backend: Backend, gateway: &str) {
    let (app, fake) = sms_app(backend.clone(), gateway, SECRET).await;
    let phone = "13812345678";
    let to = if gateway == "tencent" { format!("+86{phone}:SMS_1001") } else { format!("{phone}:SMS_1001") };
    send(&app, phone).await.unwrap();
    let code = {
        let f = fake.lock().unwrap();
        assert_eq!(f.delivered.len(), 1);
        assert_eq!(f.delivered[0].0, to);
        let params = &f.delivered[0].1;
        if gateway == "tencent" {
            assert_eq!(params[1], "5", "{{2}} is the minutes: {params}");
            params[0].as_str().unwrap().to_string()
        } else {
            assert_eq!(params["minutes"], "5");
            params["code"].as_str().unwrap().to_string()
        }
    };
    assert!(app.state.sms_codes.verify(phone, SmsPurpose::Login, &code).await.unwrap(), "the delivered code works");

    // The vendor's own per-phone limit: not a delivery, not retried.
    let limit =
        if gateway == "tencent" { "LimitExceeded.PhoneNumberOneHourLimit" } else { "isv.BUSINESS_LIMIT_CONTROL" };
    fake.lock().unwrap().script = vec![limit];
    let err = send(&app, phone).await.unwrap_err();
    assert!(matches!(err, idp::domain::authn::sms_codes::SendError::TooFrequent(_)), "{err:?}");
    {
        let f = fake.lock().unwrap();
        assert_eq!((f.attempts.len(), f.delivered.len()), (2, 1));
    }

    // Busy, then fine: one more call with the same key, one delivery.
    let busy = if gateway == "tencent" { "InternalError.Timeout" } else { "ServiceUnavailable" };
    fake.lock().unwrap().script = vec![busy];
    send(&app, phone).await.unwrap();
    {
        let f = fake.lock().unwrap();
        assert_eq!((f.attempts.len(), f.delivered.len()), (4, 2), "retried once, delivered once");
        assert_eq!(f.attempts[2].0, f.attempts[3].0, "the same idempotency key on the retry");
        assert!(!f.attempts[2].0.is_empty());
        assert_ne!(f.attempts[1].0, f.attempts[2].0, "a new message has a new key");
    }

    // Signed with the wrong secret: the vendor refuses and nothing goes out.
    let (bad, fake) = sms_app(backend, gateway, "not-the-secret").await;
    let err = send(&bad, "13812345679").await.unwrap_err();
    assert!(
        matches!(err, idp::domain::authn::sms_codes::SendError::Gateway(ref m) if m.contains("Signature")),
        "{err:?}"
    );
    assert!(fake.lock().unwrap().delivered.is_empty());
}

/// The register page end to end over HTTP with a real vendor (Aliyun's
/// fake): captcha (readable through `captcha_record_answers`), the code
/// delivered by the vendor — not by the dev sink — and the account made.
async fn register_through_aliyun(backend: Backend) {
    let (app, fake) = sms_app(backend, "aliyun", SECRET).await;
    let (b, phone) = (Browser::new(), "13700007777");
    let (status, html) = crate::accounts::send_code(&app, &b, "/register", "", phone, &[]).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains(&app.state.pages.text("zh-CN", "sms_sent")), "{html}");
    assert_eq!(sink(&app, "sms", phone).await, None, "the vendor delivers, not the dev sink");
    let code = {
        let f = fake.lock().unwrap();
        let (to, params) = f.delivered.last().expect("delivered through Aliyun");
        assert_eq!(to, &format!("{phone}:SMS_1002"), "the register template");
        // The vendor call names the provider request it served.
        let id = f.request_ids.last().expect("the call carried a request id");
        assert!(id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        params["code"].as_str().unwrap().to_string()
    };
    let html = b.http.get(app.url("/register")).send().await.unwrap().text().await.unwrap();
    let form = [
        ("req", ""),
        ("csrf", &hidden(&html, "csrf").unwrap()),
        ("action", "register"),
        ("username", "aliyun_01"),
        ("phone", phone),
        ("sms_code", &code),
        ("password", "Secret-123"),
        ("password2", "Secret-123"),
        ("agree", "yes"),
    ];
    let res = b.http.post(app.url("/register")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    let end = Browser::new().run(&app, &auth_url(&app, &app.confidential().await, &[]), phone, "Secret-123").await;
    assert!(end.code().len() > 20, "the new account signs in by phone");
}
both!(vendors_register_through_aliyun, super::register_through_aliyun);

/// Delivery receipts: each vendor's documented batch, behind the URL's
/// secret; recorded once per message however often the vendor re-pushes;
/// visible in the message table (`idp dev messages`) and the metrics.
async fn sms_receipts(backend: Backend) {
    let (app, _fake) = sms_app(backend, "aliyun", SECRET).await;
    let phone = "13812340000";
    send(&app, phone).await.unwrap();
    let post = |vendor: &str, token: &str, body: Value| {
        api().post(app.url(&format!("/sms/receipts/{vendor}?token={token}"))).json(&body).send()
    };
    let rows = |phone: &'static str| {
        let store = app.state.store.clone();
        async move { idp::ports::sms::dev_messages(&store, Some("sms_receipt"), Some(phone), 10).await.unwrap() }
    };
    let aliyun = json!([{ "phone_number": phone, "send_time": "2026-12-06 10:00:00", "report_time": "2026-12-06 10:00:05",
        "success": true, "err_code": "DELIVERED", "err_msg": "用户接收成功", "sms_size": "1",
        "biz_id": "900619746936498440^0", "out_id": "k1" }]);
    let res = post("aliyun", "wrong", aliyun.clone()).await.unwrap();
    assert_eq!(res.status(), 403);
    assert!(rows("13812340000").await.is_empty());
    for _ in 0..2 {
        let res = post("aliyun", "receipt-secret", aliyun.clone()).await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(json(res).await, json!({ "code": 0, "msg": "成功" }));
    }
    let got = rows("13812340000").await;
    assert_eq!(got.len(), 1, "recorded once: {got:?}");
    assert_eq!(got[0].purpose, "delivered");
    assert!(got[0].body.contains("900619746936498440^0") && got[0].body.contains("k1"), "{}", got[0].body);

    let tencent = json!([{ "user_receive_time": "2026-12-06 10:00:05", "nationcode": "86", "mobile": "13812340001",
        "report_status": "FAIL", "errmsg": "MK:0005", "description": "用户短信送达失败", "sid": "2019:65" }]);
    let res = post("tencent", "receipt-secret", tencent).await.unwrap();
    assert_eq!(json(res).await, json!({ "result": 0, "errmsg": "OK" }));
    let got = rows("13812340001").await;
    assert_eq!((got.len(), got[0].purpose.as_str()), (1, "failed"));
    // Not a vendor's shape, or not a vendor: refused.
    assert_eq!(post("tencent", "receipt-secret", json!({ "x": 1 })).await.unwrap().status(), 400);
    assert_eq!(post("other", "receipt-secret", json!([])).await.unwrap().status(), 404);
    let metrics = api().get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"idp_sms_receipts_total{vendor="tencent",status="failed"}"#), "{metrics}");
}
both!(vendors_sms_receipts, super::sms_receipts);

async fn sms_aliyun(backend: Backend) {
    sms_through(backend, "aliyun").await
}
both!(vendors_sms_aliyun, super::sms_aliyun);

async fn sms_tencent(backend: Backend) {
    sms_through(backend, "tencent").await
}
both!(vendors_sms_tencent, super::sms_tencent);

#[test]
fn vendor_sms_config_is_checked() {
    let env = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        let mut v = vec![
            ("IDP_ISSUER".to_string(), "http://127.0.0.1:1".to_string()),
            ("IDP_MASTER_KEY".to_string(), "7f".repeat(32)),
        ];
        v.extend(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        v
    };
    let err = Config::load_from(None, &env(&[("IDP_SMS__GATEWAY", "aliyun")])).unwrap_err().to_string();
    assert!(err.contains("sms.access_key_id"), "{err}");
    let err = Config::load_from(None, &env(&[("IDP_SMS__GATEWAY", "tencent")])).unwrap_err().to_string();
    assert!(err.contains("sms.sdk_app_id"), "{err}");
    let ok = Config::load_from(
        None,
        &env(&[
            ("IDP_SMS__GATEWAY", "aliyun"),
            ("IDP_SMS__ACCESS_KEY_ID", "id"),
            ("IDP_SMS__ACCESS_KEY_SECRET", "very-secret"),
            ("IDP_SMS__SIGN_NAME", "签名"),
            ("IDP_SMS__TEMPLATES__LOGIN", "SMS_1"),
        ]),
    )
    .unwrap();
    assert!(!format!("{:?}", ok.sms).contains("very-secret"), "secrets never in a logged config");
}

// ---------------------------------------------------------------- sign-in

const APP_PRIVATE: &str = include_str!("fakes/alipay_app_private.pem");
const APP_PUBLIC: &str = include_str!("fakes/alipay_app_public.pem");
const ALIPAY_PRIVATE: &str = include_str!("fakes/alipay_private.pem");
const ALIPAY_PUBLIC: &str = include_str!("fakes/alipay_public.pem");

/// One fake for the three vendors. `person` is who signs in at the vendor
/// next; `codes` the codes handed out (code → person, redirect URI, used).
#[derive(Default)]
struct VendorFake {
    person: String,
    codes: std::collections::HashMap<String, (String, String, bool)>,
    /// Alipay: change the signed answer after signing it.
    tamper: bool,
    calls: Vec<String>,
}

type Vendors = Arc<Mutex<VendorFake>>;
type Q = axum::extract::Query<std::collections::HashMap<String, String>>;

fn redirect_to(url: &str) -> axum::response::Response {
    (StatusCode::FOUND, [(axum::http::header::LOCATION, url.to_string())]).into_response()
}

/// The vendor's authorization page: the person agrees at once, and is
/// sent back with a fresh single-use code.
fn authorize(
    fake: &Vendors,
    q: &std::collections::HashMap<String, String>,
    code_name: &str,
) -> axum::response::Response {
    let mut f = fake.lock().unwrap();
    let code = format!("code-{}", idp::crypto::random_token(8));
    let redirect = q["redirect_uri"].clone();
    assert!(redirect.starts_with("http://127.0.0.1:") && redirect.ends_with("/callback"), "{redirect}");
    let person = f.person.clone();
    f.codes.insert(code.clone(), (person, redirect.clone(), false));
    let mut url = url::Url::parse(&redirect).unwrap();
    url.query_pairs_mut().append_pair(code_name, &code).append_pair("state", &q["state"]);
    redirect_to(url.as_str())
}

/// Uses a code: its person, or None when unknown or used before.
fn use_code(fake: &Vendors, code: &str) -> Option<(String, String)> {
    let mut f = fake.lock().unwrap();
    let entry = f.codes.get_mut(code)?;
    if entry.2 {
        return None;
    }
    entry.2 = true;
    Some((entry.0.clone(), entry.1.clone()))
}

fn wechat_routes() -> axum::Router<Vendors> {
    use axum::routing::get;
    axum::Router::new()
        .route(
            "/connect/qrconnect",
            get(|State(f): State<Vendors>, q: Q| async move {
                assert_eq!((q.0["appid"].as_str(), q.0["scope"].as_str()), ("wx-app", "snsapi_login"));
                assert_eq!(q.0["response_type"], "code");
                authorize(&f, &q.0, "code")
            }),
        )
        .route(
            "/sns/oauth2/access_token",
            get(|State(f): State<Vendors>, q: Q| async move {
                f.lock().unwrap().calls.push("wechat access_token".into());
                if q.0["appid"] != "wx-app" || q.0["secret"] != "wx-secret" {
                    return axum::Json(json!({ "errcode": 40125, "errmsg": "invalid appsecret" }));
                }
                match use_code(&f, &q.0["code"]) {
                    // No unionid here: the adapter must read userinfo.
                    Some((person, _)) => {
                        axum::Json(json!({ "access_token": format!("at-{person}"), "expires_in": 7200,
                        "refresh_token": "rt", "openid": format!("o-web-{person}"), "scope": "snsapi_login" }))
                    }
                    None => axum::Json(json!({ "errcode": 40163, "errmsg": "code been used" })),
                }
            }),
        )
        .route(
            "/sns/userinfo",
            get(|q: Q| async move {
                let person = q.0["access_token"].trim_start_matches("at-").to_string();
                assert_eq!(q.0["openid"], format!("o-web-{person}"));
                axum::Json(json!({ "openid": q.0["openid"], "nickname": "微信用户", "unionid": format!("u-{person}") }))
            }),
        )
}

fn alipay_answer(method: &str, content: Value, tamper: bool) -> String {
    let node = if content.get("sub_code").is_some() {
        "error_response".to_string()
    } else {
        format!("{}_response", method.replace('.', "_"))
    };
    let text = content.to_string();
    let key = idp::ports::upstream::alipay::private_key(ALIPAY_PRIVATE).unwrap();
    let sign = idp::ports::upstream::alipay::rsa2_sign(&key, &text);
    let text = if tamper { text.replace("2088", "2099") } else { text };
    format!(r#"{{"{node}":{text},"sign":"{sign}"}}"#)
}

fn alipay_routes() -> axum::Router<Vendors> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route(
            "/oauth2/publicAppAuthorize.htm",
            get(|State(f): State<Vendors>, q: Q| async move {
                assert_eq!((q.0["app_id"].as_str(), q.0["scope"].as_str()), ("2021000000000001", "auth_user"));
                authorize(&f, &q.0, "auth_code")
            }),
        )
        .route(
            "/gateway.do",
            post(|State(f): State<Vendors>, body: String| async move {
                use idp::ports::upstream::alipay;
                let params: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
                let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
                let method = get("method");
                let tamper = f.lock().unwrap().tamper;
                f.lock().unwrap().calls.push(method.clone());
                let app_key = alipay::public_key(APP_PUBLIC).unwrap();
                let error = |sub: &str| json!({ "code": "40002", "msg": "Invalid Arguments", "sub_code": sub, "sub_msg": sub });
                if get("sign_type") != "RSA2" || !alipay::rsa2_verify(&app_key, &alipay::sign_content(&params), &get("sign")) {
                    return alipay_answer(&method, error("isv.invalid-signature"), false);
                }
                assert_eq!((get("app_id").as_str(), get("charset").as_str(), get("version").as_str()), ("2021000000000001", "utf-8", "1.0"));
                assert!(chrono::NaiveDateTime::parse_from_str(&get("timestamp"), "%Y-%m-%d %H:%M:%S").is_ok());
                match method.as_str() {
                    "alipay.system.oauth.token" => match use_code(&f, &get("code")) {
                        Some((person, _)) if get("grant_type") == "authorization_code" => alipay_answer(
                            &method,
                            json!({ "user_id": format!("2088{person}"), "access_token": format!("at-{person}"),
                                    "expires_in": 1296000, "refresh_token": "rt", "re_expires_in": 2592000 }),
                            tamper,
                        ),
                        _ => alipay_answer(&method, error("isv.code-invalid"), false),
                    },
                    "alipay.user.info.share" => {
                        let person = get("auth_token").trim_start_matches("at-").to_string();
                        alipay_answer(&method, json!({ "code": "10000", "msg": "Success", "user_id": format!("2088{person}"), "nick_name": "支付宝用户" }), tamper)
                    }
                    _ => alipay_answer(&method, error("isv.invalid-method"), false),
                }
            }),
        )
}

fn baidu_routes() -> axum::Router<Vendors> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route(
            "/oauth/2.0/authorize",
            get(|State(f): State<Vendors>, q: Q| async move {
                assert_eq!((q.0["client_id"].as_str(), q.0["scope"].as_str()), ("bd-key", "basic"));
                authorize(&f, &q.0, "code")
            }),
        )
        .route(
            "/oauth/2.0/token",
            post(|State(f): State<Vendors>, axum::Form(q): axum::Form<std::collections::HashMap<String, String>>| async move {
                if q["client_id"] != "bd-key" || q["client_secret"] != "bd-secret" {
                    return axum::Json(json!({ "error": "invalid_client", "error_description": "unknown client" }));
                }
                match use_code(&f, &q["code"]) {
                    Some((person, redirect)) if redirect == q["redirect_uri"] && q["grant_type"] == "authorization_code" => {
                        axum::Json(json!({ "access_token": format!("at-{person}"), "expires_in": 2592000, "scope": "basic" }))
                    }
                    _ => axum::Json(json!({ "error": "invalid_grant", "error_description": "Invalid authorization code" })),
                }
            }),
        )
        .route(
            "/rest/2.0/passport/users/getInfo",
            get(|q: Q| async move {
                let person = q.0["access_token"].trim_start_matches("at-").to_string();
                axum::Json(json!({ "openid": format!("bo-{person}"), "unionid": format!("bu-{person}"), "username": "百度用户" }))
            }),
        )
}

/// The server with the three vendor upstreams, all on one loopback fake.
async fn vendor_app(backend: Backend) -> (TestApp, Vendors) {
    let fake: Vendors = Arc::default();
    let router = wechat_routes().merge(alipay_routes()).merge(baidu_routes()).with_state(fake.clone());
    let base = serve_fake(router).await;
    let up = |kind: &str, name: &str, id: &str, secret: &str, authorize: &str, api: &str| idp::config::UpstreamConfig {
        kind: kind.into(),
        display_name: name.into(),
        display_name_en: None,
        issuer: String::new(),
        client_id: id.into(),
        client_secret: secret.into(),
        alipay_public_key: (kind == "alipay").then(|| ALIPAY_PUBLIC.to_string()),
        authorize_url: Some(format!("{base}{authorize}")),
        api_url: Some(format!("{base}{api}")),
        scopes: vec!["openid".into()],
        trust_phone: false,
        auto_register: false,
        reverify_max_age: 300,
        mini_program_client: None,
    };
    let app = spawn_tuned(backend, |c| {
        c.upstreams.insert("wechat".into(), up("wechat", "微信", "wx-app", "wx-secret", "/connect/qrconnect", ""));
        c.upstreams.insert(
            "alipay".into(),
            up("alipay", "支付宝", "2021000000000001", APP_PRIVATE, "/oauth2/publicAppAuthorize.htm", "/gateway.do"),
        );
        c.upstreams.insert("baidu".into(), up("baidu", "百度", "bd-key", "bd-secret", "/oauth/2.0/authorize", ""));
    })
    .await;
    (app, fake)
}

/// From the relying party through the vendor's button; `at_callback` may
/// change the callback URL (a tampered or stale answer). Ends back at the
/// relying party or on a page of ours.
async fn through(
    app: &TestApp,
    rp: &TestClient,
    b: &Browser,
    name: &str,
    at_callback: impl Fn(String) -> String,
) -> End {
    let res = b.http.get(auth_url(app, rp, &[])).send().await.unwrap();
    let login = location(&res).unwrap();
    let html = b.http.get(&login).send().await.unwrap().text().await.unwrap();
    let href = format!("/login/upstream/{name}?req={}", hidden(&html, "req").unwrap());
    assert!(html.contains(&href), "the sign-in page offers {name}: {html}");
    let mut url = app.url(&href);
    for _ in 0..12 {
        if url.starts_with(&rp.redirect_uri) {
            return End::Client(url);
        }
        if url.contains(&format!("/login/upstream/{name}/callback")) {
            url = at_callback(url);
        }
        let res = b.http.get(&url).send().await.unwrap();
        if let Some(next) = location(&res) {
            url = if next.starts_with('/') { app.url(&next) } else { next };
            continue;
        }
        let status = res.status().as_u16();
        let body = res.text().await.unwrap();
        if url::Url::parse(&url).unwrap().path() == "/consent" && status == 200 {
            let form = [
                ("req", hidden(&body, "req").unwrap()),
                ("csrf", hidden(&body, "csrf").unwrap()),
                ("decision", "allow".into()),
            ];
            let res = b.http.post(app.url("/consent")).form(&form).send().await.unwrap();
            url = location(&res).unwrap();
            continue;
        }
        return End::Page(status, body);
    }
    panic!("too many redirects");
}

async fn links(app: &TestApp) -> Vec<idp::store::entities::upstream_link::Model> {
    use sea_orm::EntityTrait;
    idp::store::entities::upstream_link::Entity::find().all(&app.state.store).await.unwrap()
}

/// First time: the link page; the local password links the vendor account
/// and the sign-in completes. Again: straight in, as the same account.
async fn first_then_again(app: &TestApp, fake: &Vendors, name: &str, person: &str, local: &str) -> (String, String) {
    let rp = app.confidential().await;
    fake.lock().unwrap().person = person.into();
    let b = Browser::new();
    let End::Page(200, body) = through(app, &rp, &b, name, |u| u).await else { panic!("expected the link page") };
    let (ticket, csrf) = (hidden(&body, "ticket").unwrap(), hidden(&body, "csrf").unwrap());
    let form = [("ticket", ticket.as_str()), ("csrf", &csrf), ("username", local), ("password", PASSWORD)];
    let res = b.http.post(app.url("/login/link")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let end = b.run(app, &location(&res).unwrap(), local, PASSWORD).await;
    let claims = jwt_claims(json(redeem_code(app, &rp, &end.code()).await).await["id_token"].as_str().unwrap());
    let sub = claims["sub"].as_str().unwrap().to_string();
    let link = links(app).await.into_iter().find(|l| l.upstream == name).expect("linked");

    // Again, in a new browser: signed straight in as the same account.
    let b = Browser::new();
    let end = through(app, &rp, &b, name, |u| u).await;
    let claims = jwt_claims(json(redeem_code(app, &rp, &end.code()).await).await["id_token"].as_str().unwrap());
    assert_eq!(claims["sub"], sub.as_str(), "the same local account");
    (link.issuer, link.subject)
}

async fn redeem_code(app: &TestApp, rp: &TestClient, code: &str) -> reqwest::Response {
    let res = redeem(app, rp, code, None).await;
    assert_eq!(res.status(), 200);
    res
}

/// The page a failure ends on names what happened (its locale key's text).
fn says(app: &TestApp, end: &End, key: &str) {
    let text = app.state.pages.text("zh-CN", key);
    match end {
        End::Page(status, body) => {
            assert!(*status >= 400 && body.contains(&text), "expected {key}, got {status}: {body}")
        }
        End::Client(url) => panic!("expected the {key} page, went to {url}"),
    }
}

async fn wechat_sign_in(backend: Backend) {
    let (app, fake) = vendor_app(backend).await;
    app.user("wang_wu").await;
    let (issuer, subject) = first_then_again(&app, &fake, "wechat", "p1", "wang_wu").await;
    assert_eq!(
        (issuer.as_str(), subject.as_str()),
        (idp::ports::upstream::wechat::UNIONID_ISSUER, "u-p1"),
        "unionid over openid"
    );
    // A used or expired code: the vendor says so and so does our page.
    let rp = app.confidential().await;
    let end = through(&app, &rp, &Browser::new(), "wechat", |u| with_query(&u, "code", "code-expired")).await;
    says(&app, &end, "upstream_code_expired");
}
both!(vendors_wechat_sign_in, super::wechat_sign_in);

async fn alipay_sign_in(backend: Backend) {
    let (app, fake) = vendor_app(backend).await;
    app.user("zhao_liu").await;
    let (issuer, subject) = first_then_again(&app, &fake, "alipay", "p2", "zhao_liu").await;
    assert_eq!((issuer.as_str(), subject.as_str()), (idp::ports::upstream::alipay::ISSUER, "2088p2"));
    assert!(fake.lock().unwrap().calls.iter().any(|c| c == "alipay.user.info.share"));
    // A tampered answer (user_id changed after Alipay signed it) is refused
    // and links nothing.
    fake.lock().unwrap().tamper = true;
    fake.lock().unwrap().person = "p3".into();
    let before = links(&app).await.len();
    let rp = app.confidential().await;
    let end = through(&app, &rp, &Browser::new(), "alipay", |u| u).await;
    says(&app, &end, "upstream_bad_signature");
    assert_eq!(links(&app).await.len(), before);
    // An expired auth_code: Alipay's isv.code-invalid.
    fake.lock().unwrap().tamper = false;
    let end = through(&app, &rp, &Browser::new(), "alipay", |u| with_query(&u, "auth_code", "code-expired")).await;
    says(&app, &end, "upstream_code_expired");
}
both!(vendors_alipay_sign_in, super::alipay_sign_in);

async fn baidu_sign_in(backend: Backend) {
    let (app, fake) = vendor_app(backend).await;
    app.user("sun_qi").await;
    let (issuer, subject) = first_then_again(&app, &fake, "baidu", "p4", "sun_qi").await;
    assert_eq!((issuer.as_str(), subject.as_str()), (idp::ports::upstream::baidu::ISSUER, "bu-p4"));
}
both!(vendors_baidu_sign_in, super::baidu_sign_in);

/// `url` with `key` set to `value`.
fn with_query(url: &str, key: &str, value: &str) -> String {
    let mut u = url::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = u.query_pairs().into_owned().filter(|(k, _)| k != key).collect();
    u.query_pairs_mut().clear().extend_pairs(pairs).append_pair(key, value);
    u.to_string()
}

#[test]
fn vendor_upstream_config_is_checked() {
    let env = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        let mut v = vec![
            ("IDP_ISSUER".to_string(), "http://127.0.0.1:1".to_string()),
            ("IDP_MASTER_KEY".to_string(), "7f".repeat(32)),
            ("IDP_UPSTREAMS__ALI__DISPLAY_NAME".to_string(), "支付宝".to_string()),
            ("IDP_UPSTREAMS__ALI__CLIENT_ID".to_string(), "app2021".to_string()),
        ];
        v.extend(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        v
    };
    let err = Config::load_from(
        None,
        &env(&[("IDP_UPSTREAMS__ALI__KIND", "alipay"), ("IDP_UPSTREAMS__ALI__CLIENT_SECRET", "nonsense")]),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("upstreams.ali.client_secret"), "{err}");
    let err = Config::load_from(
        None,
        &env(&[("IDP_UPSTREAMS__ALI__KIND", "alipay"), ("IDP_UPSTREAMS__ALI__CLIENT_SECRET", APP_PRIVATE)]),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("upstreams.ali.alipay_public_key"), "{err}");
    let err = Config::load_from(
        None,
        &env(&[("IDP_UPSTREAMS__ALI__KIND", "qq"), ("IDP_UPSTREAMS__ALI__CLIENT_SECRET", "s")]),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("upstreams.ali.kind"), "{err}");
    Config::load_from(
        None,
        &env(&[
            ("IDP_UPSTREAMS__ALI__KIND", "alipay"),
            ("IDP_UPSTREAMS__ALI__CLIENT_SECRET", APP_PRIVATE),
            ("IDP_UPSTREAMS__ALI__ALIPAY_PUBLIC_KEY", ALIPAY_PUBLIC),
        ]),
    )
    .unwrap();
}

// ------------------------------------------------------- mini-programs

/// A code the in-app login (`wx.login`, `my.getAuthCode`,
/// `swan.getLoginCode`) gave `person`, single use as the vendor's.
fn mini_code(fake: &Vendors, person: &str) -> String {
    let code = format!("mc-{}", idp::crypto::random_token(8));
    fake.lock().unwrap().codes.insert(code.clone(), (person.into(), String::new(), false));
    code
}

fn mini_routes() -> axum::Router<Vendors> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route(
            "/sns/jscode2session",
            get(|State(f): State<Vendors>, q: Q| async move {
                if q.0["appid"] != "wx-mini" || q.0["secret"] != "wx-mini-secret" {
                    return axum::Json(json!({ "errcode": 40125, "errmsg": "invalid appsecret" }));
                }
                assert_eq!(q.0["grant_type"], "authorization_code");
                match use_code(&f, &q.0["js_code"]) {
                    Some((person, _)) => axum::Json(json!({ "openid": format!("o-mini-{person}"),
                        "session_key": "sk", "unionid": format!("u-{person}") })),
                    None => axum::Json(json!({ "errcode": 40029, "errmsg": "invalid code" })),
                }
            }),
        )
        .route(
            "/cgi-bin/token",
            get(|q: Q| async move {
                assert_eq!(q.0["grant_type"], "client_credential");
                if q.0["appid"] != "wx-mini" || q.0["secret"] != "wx-mini-secret" {
                    return axum::Json(json!({ "errcode": 40125, "errmsg": "invalid appsecret" }));
                }
                axum::Json(json!({ "access_token": "app-at", "expires_in": 7200 }))
            }),
        )
        .route(
            "/wxa/business/getuserphonenumber",
            post(|q: Q, axum::Json(body): axum::Json<Value>| async move {
                if q.0.get("access_token").map(String::as_str) != Some("app-at") {
                    return axum::Json(json!({ "errcode": 40001, "errmsg": "invalid credential" }));
                }
                // The phone code names the number in this fake: `pc-<digits>`.
                match body["code"].as_str().and_then(|c| c.strip_prefix("pc-")) {
                    Some(n) => axum::Json(json!({ "errcode": 0, "errmsg": "ok", "phone_info": {
                        "phoneNumber": n, "purePhoneNumber": n, "countryCode": "86",
                        "watermark": { "timestamp": 1637744274, "appid": "wx-mini" } } })),
                    None => axum::Json(json!({ "errcode": 40029, "errmsg": "invalid code" })),
                }
            }),
        )
        .route(
            "/oauth/jscode2sessionkey",
            post(|State(f): State<Vendors>, axum::Form(q): axum::Form<std::collections::HashMap<String, String>>| async move {
                if q["client_id"] != "bd-mini" || q["sk"] != "bd-mini-secret" {
                    return axum::Json(json!({ "error": "invalid_client", "error_description": "unknown client id" }));
                }
                match use_code(&f, &q["code"]) {
                    Some((person, _)) => axum::Json(json!({ "openid": format!("bo-mini-{person}"), "session_key": "sk" })),
                    None => axum::Json(json!({ "error": "invalid_grant", "error_description": "invalid code" })),
                }
            }),
        )
}

/// The server with the three vendors' mini-programs (and Alipay's web
/// sign-in under the same app, to link an account first).
async fn mini_app(backend: Backend) -> (TestApp, Vendors) {
    let fake: Vendors = Arc::default();
    let router = mini_routes().merge(alipay_routes()).with_state(fake.clone());
    let base = serve_fake(router).await;
    let up = |kind: &str, id: &str, secret: &str, api: &str| idp::config::UpstreamConfig {
        kind: kind.into(),
        display_name: kind.into(),
        display_name_en: None,
        issuer: String::new(),
        client_id: id.into(),
        client_secret: secret.into(),
        alipay_public_key: (kind == "alipay").then(|| ALIPAY_PUBLIC.to_string()),
        authorize_url: Some(format!("{base}/oauth2/publicAppAuthorize.htm")),
        api_url: Some(format!("{base}{api}")),
        scopes: vec!["openid".into()],
        trust_phone: kind == "wechat",
        auto_register: kind == "wechat",
        reverify_max_age: 300,
        mini_program_client: Some("mini-app".into()),
    };
    let app = spawn_tuned(backend, |c| {
        c.upstreams.insert("wxmini".into(), up("wechat", "wx-mini", "wx-mini-secret", ""));
        c.upstreams.insert("alipay".into(), up("alipay", "2021000000000001", APP_PRIVATE, "/gateway.do"));
        c.upstreams.insert("bdmini".into(), up("baidu", "bd-mini", "bd-mini-secret", ""));
    })
    .await;
    app.client(|c| {
        c.client_id = Some("mini-app".into());
        c.public = true;
        c.auth_method = Some(idp::domain::clients::AuthMethod::None);
        c.grant_types = Some(vec!["authorization_code".into(), "refresh_token".into()]);
        c.scopes = Some("openid profile phone offline_access".into());
    })
    .await;
    (app, fake)
}

async fn mini_login(app: &TestApp, name: &str, body: Value) -> (u16, Value) {
    let res = api().post(app.url(&format!("/api/miniprogram/{name}/login"))).json(&body).send().await.unwrap();
    let status = res.status().as_u16();
    (status, json(res).await)
}

async fn mini_program_login(backend: Backend) {
    let (app, fake) = mini_app(backend).await;
    use idp::store::entities::user;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

    // WeChat, first time, with the phone code: signed in and registered at
    // once (trusted, WeChat-verified phone), tokens for the mini-program.
    let code = mini_code(&fake, "m1");
    let body = json!({ "code": code, "phone_code": "pc-13800138001", "scope": "openid offline_access" });
    let (status, tokens) = mini_login(&app, "wxmini", body).await;
    assert_eq!(status, 200, "{tokens}");
    assert!(tokens["refresh_token"].is_string() && tokens["access_token"].is_string(), "{tokens}");
    let claims = jwt_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["aud"], "mini-app");
    let sub = claims["sub"].as_str().unwrap().to_string();
    let made = user::Entity::find().filter(user::Column::Phone.eq("13800138001")).one(&app.state.store).await;
    let made = made.unwrap().expect("an account for the verified phone");
    assert!(made.phone_verified);
    let link = links(&app).await.into_iter().find(|l| l.upstream == "wxmini").expect("linked");
    assert_eq!((link.issuer.as_str(), link.subject.as_str()), (idp::ports::upstream::wechat::UNIONID_ISSUER, "u-m1"));

    // Again, without a phone code: straight in as the same account.
    let (status, again) = mini_login(&app, "wxmini", json!({ "code": mini_code(&fake, "m1") })).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(jwt_claims(again["id_token"].as_str().unwrap())["sub"], sub.as_str());
    assert!(again.get("refresh_token").is_none(), "no offline_access asked");

    // A used code: invalid_grant, as OAuth-style JSON.
    let (status, err) = mini_login(&app, "wxmini", json!({ "code": code })).await;
    assert_eq!((status, err["error"].as_str()), (400, Some("invalid_grant")), "{err}");
    // A bad phone code: WeChat's 40029, nothing linked.
    let body = json!({ "code": mini_code(&fake, "m2"), "phone_code": "bogus" });
    let (status, err) = mini_login(&app, "wxmini", body).await;
    assert_eq!((status, err["error"].as_str()), (400, Some("invalid_grant")), "{err}");
    assert_eq!(links(&app).await.len(), 1);
    // No phone and no link: the person has to link on the web once.
    let (status, err) = mini_login(&app, "wxmini", json!({ "code": mini_code(&fake, "m2") })).await;
    assert_eq!((status, err["error"].as_str()), (400, Some("interaction_required")), "{err}");
    // Missing code, unknown upstream, a scope beyond the client's.
    let (status, err) = mini_login(&app, "wxmini", json!({})).await;
    assert_eq!((status, err["error"].as_str()), (400, Some("invalid_request")), "{err}");
    let (status, err) = mini_login(&app, "nope", json!({ "code": "x" })).await;
    assert_eq!((status, err["error"].as_str()), (400, Some("invalid_request")), "{err}");
    let (status, err) =
        mini_login(&app, "wxmini", json!({ "code": mini_code(&fake, "m1"), "scope": "openid email" })).await;
    assert_eq!((status, err["error"].as_str()), (400, Some("invalid_scope")), "{err}");

    // Alipay: linked once on the web, then the mini-program's auth code
    // signs the same account straight in.
    app.user("qian_ba").await;
    first_then_again(&app, &fake, "alipay", "m3", "qian_ba").await;
    let owner = links(&app).await.into_iter().find(|l| l.upstream == "alipay").unwrap().user_id;
    let (status, tokens) = mini_login(&app, "alipay", json!({ "code": mini_code(&fake, "m3") })).await;
    assert_eq!(status, 200, "{tokens}");
    let expected = idp::domain::tokens::subjects::of_account(&app.state.store, &owner).await.unwrap();
    assert_eq!(jwt_claims(tokens["id_token"].as_str().unwrap())["sub"], expected.as_str());
    // A tampered Alipay answer is refused.
    fake.lock().unwrap().tamper = true;
    let (status, err) = mini_login(&app, "alipay", json!({ "code": mini_code(&fake, "m3") })).await;
    assert_eq!((status, err["error"].as_str()), (503, Some("temporarily_unavailable")), "{err}");
    fake.lock().unwrap().tamper = false;
    // Two-step sign-in on (an authenticator app enrolled): the upstream
    // alone is one step, so the app API refuses to sign in and sends the
    // person to the web, where the second step is asked.
    let now = app.state.clock.now();
    let enrolment = app.state.totp.start(&owner, "qian_ba", now).await.unwrap().unwrap();
    let code = crate::factors::app_code(&enrolment.secret, now);
    app.state.totp.confirm(&owner, "qian_ba", &code, now).await.unwrap().unwrap();
    let (status, err) = mini_login(&app, "alipay", json!({ "code": mini_code(&fake, "m3") })).await;
    assert_eq!((status, err["error"].as_str()), (400, Some("interaction_required")), "{err}");

    // Baidu smart program: the code is redeemed (with the App Secret), the
    // account is not linked yet; a used code is invalid_grant.
    let code = mini_code(&fake, "m4");
    let (status, err) = mini_login(&app, "bdmini", json!({ "code": code })).await;
    assert_eq!((status, err["error"].as_str()), (400, Some("interaction_required")), "{err}");
    let (status, err) = mini_login(&app, "bdmini", json!({ "code": code })).await;
    assert_eq!((status, err["error"].as_str()), (400, Some("invalid_grant")), "{err}");
}
both!(vendors_mini_program_login, super::mini_program_login);
