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
}

type Shared = Arc<Mutex<SmsFake>>;

/// Aliyun `SendSms` as documented: RPC GET, HMAC-SHA1 over the sorted,
/// encoded parameters; nonce single use; `OutId` echoed in receipts.
async fn aliyun_fake(State(fake): State<Shared>, uri: axum::http::Uri) -> axum::response::Response {
    let query = uri.query().unwrap_or("");
    let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
    let refuse = |status: StatusCode, code: &str| (status, axum::Json(json!({ "Code": code, "Message": code })));
    for required in ["AccessKeyId", "Action", "Format", "SignatureMethod", "SignatureNonce", "SignatureVersion",
        "Timestamp", "Version", "PhoneNumbers", "SignName", "TemplateCode", "TemplateParam"] {
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
    let error = |code: &str| axum::Json(json!({ "Response": { "Error": { "Code": code, "Message": code }, "RequestId": "r" } }));
    let Ok(ts) = h("x-tc-timestamp").parse::<i64>() else { return error("MissingParameter").into_response() };
    if h("x-tc-action") != "SendSms" || h("x-tc-version") != "2021-01-11" || h("content-type") != idp::ports::sms::tencent::CONTENT_TYPE {
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
    let limit = if gateway == "tencent" { "LimitExceeded.PhoneNumberOneHourLimit" } else { "isv.BUSINESS_LIMIT_CONTROL" };
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
    assert!(matches!(err, idp::domain::authn::sms_codes::SendError::Gateway(ref m) if m.contains("Signature")), "{err:?}");
    assert!(fake.lock().unwrap().delivered.is_empty());
}

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
