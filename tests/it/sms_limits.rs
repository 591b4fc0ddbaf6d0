//! A7 SMS limits are rolling windows: "5 in any hour" counts the sends of
//! the last 3600 seconds. A fixed window that starts at the first send let
//! about nine through within one rolling hour across the window boundary.
use crate::accounts::send_code;
use crate::both;
use crate::support::*;

async fn rolling_hour(backend: Backend) {
    let app = spawn(backend).await;
    let (sent_before, refused_before) = (sms_counted(&app, "sent").await, sms_counted(&app, "refused_limit").await);
    let b = Browser::new();
    let phone = "13700006666";
    let sent = |status: u16, i: usize, html: &str| assert_eq!(status, 200, "send {i}: {html}");
    // One send, then four more 50 minutes later: five in the hour.
    let (status, html) = send_code(&app, &b, "/register", "", phone, &[]).await;
    sent(status, 1, &html);
    app.state.clock.advance(3000);
    for i in 2..=5 {
        let (status, html) = send_code(&app, &b, "/register", "", phone, &[]).await;
        sent(status, i, &html);
    }
    // Just past the first send's hour: exactly one slot is free again (a
    // fixed window would have reset and given five).
    app.state.clock.advance(601);
    let (status, html) = send_code(&app, &b, "/register", "", phone, &[]).await;
    sent(status, 6, &html);
    let (status, _) = send_code(&app, &b, "/register", "", phone, &[]).await;
    assert_eq!(status, 400, "a sixth send within the last hour");
    // The four sends of minute 50 leave the window at minute 110.
    app.state.clock.advance(3000);
    for i in 7..=10 {
        let (status, html) = send_code(&app, &b, "/register", "", phone, &[]).await;
        sent(status, i, &html);
    }
    // Ten in the last 24 hours: the day's limit, whatever the hour says.
    app.state.clock.advance(3601);
    let (status, html) = send_code(&app, &b, "/register", "", phone, &[]).await;
    assert_eq!(status, 400, "an eleventh send within 24 hours");
    let day = app.state.pages.text("zh-CN", "sms_too_frequent_day");
    let day = day.split("{minutes}").next().unwrap();
    assert!(html.contains(day), "the day's limit is named: {html}");
    // Operators see the sends and the refusals (other tests in this process
    // may add to the counters meanwhile, never take away).
    assert!(sms_counted(&app, "sent").await >= sent_before + 10);
    assert!(sms_counted(&app, "refused_limit").await >= refused_before + 2);
}

/// `idp_sms_total{outcome=…}` at `/metrics` (0 before the first).
async fn sms_counted(app: &TestApp, outcome: &str) -> u64 {
    let text = api().get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let series = format!("idp_sms_total{{outcome=\"{outcome}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(&series)).map_or(0, |v| v.parse().unwrap())
}
both!(sms_limits_are_rolling_windows, super::rolling_hour);
