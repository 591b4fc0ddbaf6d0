//! Aliyun SMS (`dysmsapi`, `SendSms`, API version 2017-05-25) over the RPC
//! style signed GET: every parameter percent-encoded as Aliyun's POP rules
//! ask (RFC 3986 unreserved kept, space as `%20`), sorted, and signed with
//! HMAC-SHA1 keyed by `AccessKeySecret&` over
//! `GET&%2F&percent(canonical query)`.
use super::{Attempt, SmsMessage, VendorCreds};
use crate::net::Traced;

pub const DEFAULT_URL: &str = "https://dysmsapi.aliyuncs.com/";

/// Percent-encoding as Aliyun documents it: `A-Z a-z 0-9 - _ . ~` stay,
/// every other byte of the UTF-8 form becomes `%XX` (upper case).
pub fn percent(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `a=1&b=2` of the parameters, each encoded, sorted by name (`Signature`
/// itself left out).
pub fn canonical_query(params: &[(String, String)]) -> String {
    let mut sorted: Vec<_> = params.iter().filter(|(k, _)| k != "Signature").collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    sorted.iter().map(|(k, v)| format!("{}={}", percent(k), percent(v))).collect::<Vec<_>>().join("&")
}

pub fn string_to_sign(method: &str, params: &[(String, String)]) -> String {
    format!("{method}&{}&{}", percent("/"), percent(&canonical_query(params)))
}

/// Base64 of HMAC-SHA1 keyed by `secret&`.
pub fn signature(method: &str, params: &[(String, String)], secret: &str) -> String {
    use base64::Engine;
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, format!("{secret}&").as_bytes());
    let tag = ring::hmac::sign(&key, string_to_sign(method, params).as_bytes());
    base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
}

/// Template parameters as Aliyun wants them: a JSON object of strings.
fn template_param(params: &serde_json::Value) -> String {
    let mut out = serde_json::Map::new();
    if let Some(obj) = params.as_object() {
        for (k, v) in obj {
            let s = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            out.insert(k.clone(), serde_json::Value::String(s));
        }
    }
    serde_json::Value::Object(out).to_string()
}

/// One signed `SendSms` call. `out_id` is the message's idempotency key, the
/// same on every attempt (Aliyun echoes it in the delivery receipt); the
/// nonce is fresh per attempt (Aliyun refuses a repeated one).
pub async fn send_once(
    http: &reqwest::Client,
    creds: &VendorCreds,
    msg: &SmsMessage,
    template: &str,
    out_id: &str,
    now: i64,
) -> Attempt {
    let timestamp = chrono::DateTime::from_timestamp(now, 0).unwrap_or_default().format("%Y-%m-%dT%H:%M:%SZ");
    let mut params: Vec<(String, String)> = [
        ("AccessKeyId", creds.key_id.as_str()),
        ("Action", "SendSms"),
        ("Format", "JSON"),
        ("RegionId", creds.region.as_deref().unwrap_or("cn-hangzhou")),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
        ("Version", "2017-05-25"),
        ("PhoneNumbers", msg.phone.as_str()),
        ("SignName", creds.sign_name.as_str()),
        ("TemplateCode", template),
        ("OutId", out_id),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    params.push(("SignatureNonce".into(), uuid::Uuid::new_v4().to_string()));
    params.push(("Timestamp".into(), timestamp.to_string()));
    params.push(("TemplateParam".into(), template_param(&msg.params)));
    let sig = signature("GET", &params, &creds.secret);
    let url = format!("{}?Signature={}&{}", creds.url, percent(&sig), canonical_query(&params));
    let res = match http.get(&url).traced().send().await {
        Ok(r) => r,
        // Never reached Aliyun: safe to try again.
        Err(e) if e.is_connect() => return Attempt::Retry(format!("connect: {e}")),
        // Sent, answer lost: Aliyun may have accepted it, so no retry.
        Err(e) => return Attempt::Unknown(e.to_string()),
    };
    let status = res.status();
    let body: serde_json::Value = res.json().await.unwrap_or_default();
    let code = body["Code"].as_str().unwrap_or_default().to_string();
    classify(status.as_u16(), &code)
}

/// Aliyun's answer codes, mapped to what we do next.
pub fn classify(status: u16, code: &str) -> Attempt {
    match code {
        "OK" => Attempt::Sent,
        // Aliyun's per-phone limits: not a delivery, and retrying now would
        // only be refused again.
        "isv.BUSINESS_LIMIT_CONTROL" | "isv.DAY_LIMIT_CONTROL" | "isv.MONTH_LIMIT_CONTROL" => {
            Attempt::RateLimited(code.to_string())
        }
        // Refused before processing (API flow control, Aliyun busy).
        "Throttling" | "Throttling.Api" | "Throttling.User" | "isp.SYSTEM_ERROR" | "ServiceUnavailable" => {
            Attempt::Retry(code.to_string())
        }
        "" if status >= 500 => Attempt::Retry(format!("HTTP {status}")),
        "" => Attempt::Refused(format!("HTTP {status}")),
        other => Attempt::Refused(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// The example of Aliyun's SMS signing document (AccessKeySecret `testSecret`).
    #[test]
    fn aliyun_sms_documented_example() {
        let params = p(&[
            ("AccessKeyId", "testId"),
            ("Action", "SendSms"),
            ("Format", "XML"),
            ("OutId", "123"),
            ("PhoneNumbers", "15300000001"),
            ("RegionId", "cn-hangzhou"),
            ("SignName", "阿里云短信测试专用"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "45e25e9b-0a6f-4070-8c85-2956eda1b466"),
            ("SignatureVersion", "1.0"),
            ("TemplateCode", "SMS_71390007"),
            ("TemplateParam", "{\"customer\":\"test\"}"),
            ("Timestamp", "2017-07-12T02:42:19Z"),
            ("Version", "2017-05-25"),
        ]);
        assert!(string_to_sign("GET", &params).starts_with(
            "GET&%2F&AccessKeyId%3DtestId%26Action%3DSendSms%26Format%3DXML%26OutId%3D123%26PhoneNumbers%3D15300000001"
        ));
        assert_eq!(signature("GET", &params, "testSecret"), "zJDF+Lrzhj/ThnlvIToysFRq6t4=");
    }

    /// The example of Aliyun's RPC signing document (DescribeRegions).
    #[test]
    fn aliyun_rpc_documented_example() {
        let params = p(&[
            ("Format", "XML"),
            ("AccessKeyId", "testid"),
            ("Action", "DescribeRegions"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"),
            ("SignatureVersion", "1.0"),
            ("Version", "2014-05-26"),
            ("Timestamp", "2016-02-23T12:46:24Z"),
        ]);
        assert_eq!(signature("GET", &params, "testsecret"), "OLeaidS1JvxuMvnyHOwuJ+uX5qY=");
    }

    #[test]
    fn percent_encoding_rules() {
        assert_eq!(percent("a b*~/"), "a%20b%2A~%2F");
        assert_eq!(percent("派"), "%E6%B4%BE");
    }

    #[test]
    fn codes() {
        assert!(matches!(classify(200, "OK"), Attempt::Sent));
        assert!(matches!(classify(200, "isv.BUSINESS_LIMIT_CONTROL"), Attempt::RateLimited(_)));
        assert!(matches!(classify(503, "ServiceUnavailable"), Attempt::Retry(_)));
        assert!(matches!(classify(400, "isv.MOBILE_NUMBER_ILLEGAL"), Attempt::Refused(_)));
    }
}
