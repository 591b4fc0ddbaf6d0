//! Tencent Cloud SMS (`SendSms`, API 2021-01-11) over TencentCloud API 3.0:
//! a JSON POST signed TC3-HMAC-SHA256 (canonical request over the
//! `content-type` and `host` headers and the payload's SHA-256; signing key
//! derived `TC3`+SecretKey → date → service → `tc3_request`).
use super::{Attempt, SmsMessage, VendorCreds};
use crate::net::Traced;
use sha2::{Digest, Sha256};

pub const DEFAULT_URL: &str = "https://sms.tencentcloudapi.com/";
pub const CONTENT_TYPE: &str = "application/json; charset=utf-8";
const SERVICE: &str = "sms";

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    ring::hmac::sign(&key, data.as_bytes()).as_ref().to_vec()
}

pub fn canonical_request(host: &str, payload: &str) -> String {
    format!(
        "POST\n/\n\ncontent-type:{CONTENT_TYPE}\nhost:{host}\n\ncontent-type;host\n{}",
        hex(&Sha256::digest(payload.as_bytes()))
    )
}

/// The UTC date of a Unix time, as TC3 scopes credentials.
pub fn date_of(timestamp: i64) -> String {
    chrono::DateTime::from_timestamp(timestamp, 0).unwrap_or_default().format("%Y-%m-%d").to_string()
}

pub fn string_to_sign(service: &str, host: &str, payload: &str, timestamp: i64) -> String {
    format!(
        "TC3-HMAC-SHA256\n{timestamp}\n{}/{service}/tc3_request\n{}",
        date_of(timestamp),
        hex(&Sha256::digest(canonical_request(host, payload).as_bytes()))
    )
}

/// The hexadecimal TC3 signature.
pub fn signature(secret_key: &str, service: &str, host: &str, payload: &str, timestamp: i64) -> String {
    let date = hmac(format!("TC3{secret_key}").as_bytes(), &date_of(timestamp));
    let service_key = hmac(&date, service);
    let signing = hmac(&service_key, "tc3_request");
    hex(&hmac(&signing, &string_to_sign(service, host, payload, timestamp)))
}

pub fn authorization(
    secret_id: &str,
    secret_key: &str,
    service: &str,
    host: &str,
    payload: &str,
    timestamp: i64,
) -> String {
    format!(
        "TC3-HMAC-SHA256 Credential={secret_id}/{}/{service}/tc3_request, SignedHeaders=content-type;host, Signature={}",
        date_of(timestamp),
        signature(secret_key, service, host, payload, timestamp)
    )
}

/// Tencent wants E.164; a mainland number without a country code gets +86.
fn e164(phone: &str) -> String {
    if phone.starts_with('+') { phone.to_string() } else { format!("+86{phone}") }
}

/// The template's `{1}`, `{2}` … in `order`; by default the code, then
/// the minutes, then any other parameter by name.
fn param_set(params: &serde_json::Value, order: Option<&Vec<String>>) -> Vec<String> {
    let Some(obj) = params.as_object() else { return Vec::new() };
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let names: Vec<String> = match order {
        Some(o) => o.clone(),
        None => {
            let mut names: Vec<String> =
                ["code", "minutes"].iter().filter(|k| obj.contains_key(**k)).map(|k| k.to_string()).collect();
            names.extend(obj.keys().filter(|k| !names.contains(k)).cloned().collect::<Vec<_>>());
            names
        }
    };
    names.iter().filter_map(|n| obj.get(n)).map(text).collect()
}

pub async fn send_once(
    http: &reqwest::Client,
    creds: &VendorCreds,
    msg: &SmsMessage,
    template: &str,
    session: &str,
    now: i64,
) -> Attempt {
    let Some(app_id) = creds.app_id.as_deref() else { return Attempt::Refused("sms.sdk_app_id missing".into()) };
    let payload = serde_json::json!({
        "PhoneNumberSet": [e164(&msg.phone)],
        "SmsSdkAppId": app_id,
        "SignName": creds.sign_name,
        "TemplateId": template,
        "TemplateParamSet": param_set(&msg.params, creds.param_order.get(msg.purpose.as_str())),
        "SessionContext": session,
    })
    .to_string();
    let host = match url::Url::parse(&creds.url) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            _ => return Attempt::Refused("sms.url has no host".into()),
        },
        Err(e) => return Attempt::Refused(format!("sms.url: {e}")),
    };
    let auth = authorization(&creds.key_id, &creds.secret, SERVICE, &host, &payload, now);
    let req = http
        .post(&creds.url)
        .header("Authorization", auth)
        .header("Content-Type", CONTENT_TYPE)
        .header("Host", &host)
        .header("X-TC-Action", "SendSms")
        .header("X-TC-Timestamp", now.to_string())
        .header("X-TC-Version", "2021-01-11")
        .header("X-TC-Region", creds.region.as_deref().unwrap_or("ap-guangzhou"))
        .body(payload);
    let res = match req.traced().send().await {
        Ok(r) => r,
        Err(e) if e.is_connect() => return Attempt::Retry(format!("connect: {e}")),
        Err(e) => return Attempt::Unknown(e.to_string()),
    };
    let status = res.status().as_u16();
    let body: serde_json::Value = res.json().await.unwrap_or_default();
    let r = &body["Response"];
    if let Some(code) = r["Error"]["Code"].as_str() {
        return classify(code);
    }
    match r["SendStatusSet"][0]["Code"].as_str() {
        Some(code) => classify(code),
        None if status >= 500 => Attempt::Retry(format!("HTTP {status}")),
        None => Attempt::Refused(format!("HTTP {status}: no SendStatusSet")),
    }
}

/// Tencent's error codes (request-level `Error.Code` or per-number
/// `SendStatusSet[].Code`), mapped to what we do next.
pub fn classify(code: &str) -> Attempt {
    if code == "Ok" {
        Attempt::Sent
    } else if code.starts_with("LimitExceeded.PhoneNumber") || code == "LimitExceeded.DailyLimit" {
        Attempt::RateLimited(code.to_string())
    } else if code == "RequestLimitExceeded" || code.starts_with("InternalError") || code == "ResourceUnavailable" {
        Attempt::Retry(code.to_string())
    } else {
        Attempt::Refused(code.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// TencentCloud API 3.0 signing document's example (cvm DescribeInstances).
    #[test]
    fn tc3_documented_example() {
        let payload = r#"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#;
        let host = "cvm.tencentcloudapi.com";
        assert_eq!(
            hex(&Sha256::digest(payload.as_bytes())),
            "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
        );
        assert_eq!(
            string_to_sign("cvm", host, payload, 1551113065),
            "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
        );
        assert_eq!(
            authorization(
                "AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******",
                "Gu5t9xGARNpq86cd98joQYCN3*******",
                "cvm",
                host,
                payload,
                1551113065
            ),
            "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, Signature=2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c"
        );
    }

    #[test]
    fn params_and_codes() {
        let p = serde_json::json!({"minutes": 5, "code": "123456"});
        assert_eq!(param_set(&p, None), vec!["123456", "5"]);
        assert_eq!(e164("13800000000"), "+8613800000000");
        assert!(matches!(classify("LimitExceeded.PhoneNumberOneHourLimit"), Attempt::RateLimited(_)));
        assert!(matches!(classify("InternalError.Timeout"), Attempt::Retry(_)));
        assert!(matches!(classify("AuthFailure.SignatureFailure"), Attempt::Refused(_)));
    }
}
