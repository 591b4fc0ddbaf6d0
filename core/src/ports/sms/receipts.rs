//! SMS delivery receipts (issue 18): the vendors push, per message, whether
//! the phone received it. Aliyun's HTTP batch push (`SmsReport`) and
//! Tencent Cloud's status callback are JSON arrays; neither vendor signs
//! them, so the callback URL given to the vendor carries a secret
//! (`sms.receipt_token`, checked in constant time by the route).
//!
//! Each receipt is stored once in the message table (channel
//! `sms_receipt`, purpose `delivered` / `failed`), keyed by the vendor's
//! message id: a vendor re-pushing a receipt (it retries until answered)
//! records nothing new. `idp dev messages --channel sms_receipt` lists them.
use crate::store::Store;
use crate::store::entities::dev_message;
use sea_orm::{ActiveModelTrait, DbErr, Set};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// One receipt as the vendor reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The vendor's id of the message (Aliyun `biz_id`, Tencent `sid`).
    pub message_id: String,
    /// Our idempotency key when echoed (Aliyun `out_id`).
    pub our_key: String,
    pub phone: String,
    pub delivered: bool,
    /// The vendor's status code (`DELIVERED`, `DELIVRD`, `MK:0001` …).
    pub code: String,
}

/// Parses a vendor's pushed batch; `None` when it is not that vendor's
/// documented shape.
pub fn parse(vendor: &str, body: &[u8]) -> Option<Vec<Receipt>> {
    let items: Vec<Value> = serde_json::from_slice(body).ok()?;
    let s = |v: &Value, k: &str| match &v[k] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    };
    items
        .iter()
        .map(|v| {
            let r = match vendor {
                // Aliyun SmsReport: phone_number, success, err_code, biz_id, out_id.
                "aliyun" => Receipt {
                    message_id: s(v, "biz_id"),
                    our_key: s(v, "out_id"),
                    phone: s(v, "phone_number"),
                    delivered: v["success"].as_bool()?,
                    code: s(v, "err_code"),
                },
                // Tencent: mobile, report_status SUCCESS/FAIL, errmsg, sid.
                "tencent" => Receipt {
                    message_id: s(v, "sid"),
                    our_key: String::new(),
                    phone: s(v, "mobile"),
                    delivered: match v["report_status"].as_str()? {
                        "SUCCESS" => true,
                        "FAIL" => false,
                        _ => return None,
                    },
                    code: s(v, "errmsg"),
                },
                _ => return None,
            };
            (!r.message_id.is_empty()).then_some(r)
        })
        .collect()
}

/// The answer the vendor expects for a batch it may stop re-sending.
pub fn acknowledgement(vendor: &str) -> Value {
    match vendor {
        "tencent" => serde_json::json!({ "result": 0, "errmsg": "OK" }),
        _ => serde_json::json!({ "code": 0, "msg": "成功" }),
    }
}

/// Records a receipt once; `true` when it was new.
pub async fn record(db: &Store, vendor: &str, r: &Receipt, now: i64) -> Result<bool, DbErr> {
    let digest = super::tencent::hex(&Sha256::digest(format!("{vendor}:{}", r.message_id).as_bytes()));
    let row = dev_message::ActiveModel {
        id: Set(format!("receipt-{}", &digest[..48])),
        channel: Set("sms_receipt".into()),
        recipient: Set(r.phone.clone()),
        purpose: Set(if r.delivered { "delivered" } else { "failed" }.into()),
        body: Set(format!("{vendor} {} {} {}", r.message_id, r.our_key, r.code).trim_end().to_string()),
        created_at: Set(now),
    };
    match row.insert(db).await {
        Ok(_) => Ok(true),
        Err(e) if matches!(e.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_))) => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_batches() {
        let aliyun = r#"[{"phone_number":"13900000000","send_time":"2017-01-01 11:12:13","report_time":"2017-02-02 22:23:24","success":true,"err_code":"DELIVERED","err_msg":"用户接收成功","sms_size":"1","biz_id":"932702304080415357^0","out_id":"1184585343"}]"#;
        let r = parse("aliyun", aliyun.as_bytes()).unwrap();
        assert_eq!(
            (r[0].message_id.as_str(), r[0].our_key.as_str(), r[0].delivered),
            ("932702304080415357^0", "1184585343", true)
        );
        let tencent = r#"[{"user_receive_time":"2015-10-17 08:03:04","nationcode":"86","mobile":"13xxxxxxxxx","report_status":"FAIL","errmsg":"MK:0005","description":"用户短信送达失败","sid":"xxxxxxx"}]"#;
        let r = parse("tencent", tencent.as_bytes()).unwrap();
        assert_eq!((r[0].message_id.as_str(), r[0].delivered, r[0].code.as_str()), ("xxxxxxx", false, "MK:0005"));
        assert!(parse("aliyun", b"{}").is_none());
    }
}
