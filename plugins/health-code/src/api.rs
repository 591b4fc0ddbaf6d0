//! The APIs for apps (E1, E2, E4): scanning apps verify a payload; data
//! sources push status records and labs nucleic-acid results. Each route
//! needs its own scope, which the host checks (token and the client's
//! current permission) before the plugin sees the call.
use crate::events::{self, Event};
use crate::{HealthCode, codes, issuers, status, util};
use idp_plugin_sdk::{Request, Response, Value, Verified, json};

fn bad(description: &str) -> Response {
    Response::json(400, json!({ "error": "invalid_request", "error_description": description }))
}

fn body(req: &Request) -> Value {
    serde_json::from_str(&req.body).unwrap_or(Value::Null)
}

pub fn handle(p: &HealthCode, req: &Request) -> Result<Response, String> {
    let app = req.client_id.clone().unwrap_or_default();
    match req.path.as_str() {
        "/api/scan" => scan(p, req, &app),
        "/api/code" => code(p, req, &app),
        "/api/status" => {
            let b = body(req);
            let s = |k: &str| b.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
            let subject = if s("subject").is_empty() { s("id_number") } else { s("subject") };
            match status::push(&p.host, &subject, &s("status"), &s("reason"), &app)? {
                Ok(rec) => {
                    let rules = status::rules(&p.host, &p.settings.rules)?;
                    let (colour, _) = status::colour(&p.host, &rules, &subject)?;
                    Ok(Response::json(201, json!({ "record": status::record_json(&rec), "colour": colour })))
                }
                Err(e) => Ok(bad(&e)),
            }
        }
        "/api/lab-results" => match status::push_lab(&p.host, &body(req), &app)? {
            Ok(rec) => Ok(Response::json(201, json!({ "result": rec.result, "sampled_at": rec.sampled_at }))),
            Err(e) => Ok(bad(&e)),
        },
        _ => Ok(Response::not_found()),
    }
}

/// E4 (generation permission per app): an app permitted the code scope
/// fetches its user's current personal code — the same payload the page
/// shows, logged as a show by that app.
fn code(p: &HealthCode, req: &Request, app: &str) -> Result<Response, String> {
    let Some(sub) = req.subject.as_deref() else {
        return Ok(bad("needs a user's token"));
    };
    let Some(holder) = codes::of_account(&p.host, sub)? else {
        return Ok(Response::json(404, json!({ "error": "not_found", "error_description": "no code issued yet" })));
    };
    let (payload, until) = codes::online_payload(&p.host, &holder, "personal", p.settings.rotate_seconds, false)?;
    let rules = status::rules(&p.host, &p.settings.rules)?;
    let (colour, _) = status::colour(&p.host, &rules, &holder.key)?;
    let place = req.query("place").unwrap_or_default().to_string();
    let e = Event {
        kind: "show".into(),
        code_type: "personal".into(),
        holder: holder.hid.clone(),
        app: app.into(),
        place,
        result: String::new(),
        at: 0,
    };
    events::record(&p.host, e)?;
    // 授权办事: the person reads which app obtained the code, and when.
    crate::access::record(&p.host, &holder.key, "app", app, req.client_name.as_deref(), "code")?;
    Ok(Response::json(
        200,
        json!({ "payload": payload, "colour": colour, "name": holder.masked_name, "valid_until": until }),
    ))
}

/// E4: the verified colour, masked identity and validity — nothing else.
/// Every scan is logged, refused ones too.
fn scan(p: &HealthCode, req: &Request, app: &str) -> Result<Response, String> {
    let b = body(req);
    let payload = b.get("payload").and_then(Value::as_str).unwrap_or_default();
    let place = b.get("place").and_then(Value::as_str).unwrap_or_default().to_string();
    if payload.is_empty() {
        return Ok(bad("payload is required"));
    }
    let log = |code_type: &str, holder: &str, result: &str| {
        events::record(
            &p.host,
            Event {
                kind: "scan".into(),
                code_type: code_type.into(),
                holder: holder.into(),
                app: app.into(),
                place: place.clone(),
                result: result.into(),
                at: 0,
            },
        )
    };
    let refuse = |reason: &str| -> Result<Response, String> {
        log("", "", reason)?;
        Ok(Response::json(200, json!({ "valid": false, "reason": reason })))
    };
    let claims = match p.host.verify(payload)? {
        Verified::Valid(c) => c,
        Verified::Expired => return refuse("expired"),
        // Not ours: a registered third-party issuer's code (E5), checked
        // with that issuer's key, or refused.
        Verified::Invalid => {
            return match issuers::verify(&p.host, payload)? {
                Some(Ok(answer)) => {
                    let issuer = answer["issuer"].as_str().unwrap_or_default();
                    log("third_party", &format!("issuer:{issuer}"), "ok")?;
                    Ok(Response::json(200, answer))
                }
                Some(Err(reason)) => refuse(reason),
                None => refuse("invalid"),
            };
        }
    };
    let until = match codes::current(&p.host, &claims, p.settings.rotate_seconds)? {
        Ok(u) => u,
        Err(reason) => return refuse(reason),
    };
    let hid = claims.get("hid").and_then(Value::as_str).unwrap_or_default();
    let Some(holder) = codes::find_holder(&p.host, hid)? else {
        return refuse("invalid");
    };
    let shown_as = claims.get("t").and_then(Value::as_str).unwrap_or("personal");
    let rules = status::rules(&p.host, &p.settings.rules)?;
    let (colour, _) = status::colour(&p.host, &rules, &holder.key)?;
    log(shown_as, &holder.hid, "ok")?;
    Ok(Response::json(
        200,
        json!({
            "valid": true,
            "colour": colour,
            "name": holder.masked_name,
            "code_type": shown_as,
            "offline": claims.get("hc").and_then(Value::as_str) == Some("offline"),
            "valid_until": until,
            "valid_until_text": util::datetime(until),
        }),
    ))
}
