//! The operator's console (`/console`) in a real browser, headless Chromium driven over its DevTools
//! protocol (`browser`): its assets come from the gateway alone, under a strict CSP and 150 KB; a wrong
//! token shows only the sign-in; signed in with `#token=`, an operator sees a call placed by the carrier
//! simulator appear, its frames rise, listens in (the page hears both sides), hangs it up (the carrier
//! hears `terminate`), finds it in the history with end reason `admin`, filters the history, downloads it
//! as CSV and opens the call's timeline with its transcript. Screenshots go to `target/console-*.png`.

use crate::browser::Browser;
use crate::common::*;
use std::time::Duration;
use websocket_api::audio::codec::encode_ulaw;
use websocket_api::audio::format::AudioFormat;
use websocket_api::audio::signal::tone;
use websocket_api::db::batcher::FlushAll;
use websocket_api::http::console;
use websocket_api::tools::sim::agent::AgentScript;
use websocket_api::tools::sim::carrier::{CarrierConn, Heard};

const TOKEN: &str = "console-token";

#[actix_rt::test]
async fn the_console_comes_from_the_gateway_alone_under_a_strict_policy() {
    let h = start(quiet_script(), |c| c.admin.token = Some(TOKEN.into())).await;
    let mut total = 0;
    for (path, body) in console::assets() {
        let resp = awc::Client::default()
            .get(format!("{}{path}", h.gw.admin_url))
            .send()
            .await
            .expect("answers");
        assert_eq!(resp.status().as_u16(), 200, "{path} needs no token: it holds no data");
        let csp = resp
            .headers()
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok());
        assert!(
            csp.is_some_and(|c| c.starts_with("default-src 'self'")),
            "{path}: {csp:?}"
        );
        assert!(
            !body.contains("http://") && !body.contains("https://"),
            "{path} reaches nowhere else"
        );
        assert!(!body.contains("innerHTML"), "{path} puts data in the page as text only");
        total += body.len();
    }
    assert!(total < 150_000, "the console is {total} bytes");
}

#[actix_rt::test]
async fn signed_in_by_its_fragment_an_operator_sees_each_live_call_and_hangs_it_up() {
    // The agent answers each half second of the caller's speech: half a second of a tone, and transcripts.
    let script = AgentScript {
        reply_after_user_ms: 500,
        reply_ms: 500,
        transcripts: true,
        ..quiet_script()
    };
    let h = start(script, |c| c.admin.token = Some(TOKEN.into())).await;
    let page = format!("{}/console", h.gw.admin_url);
    let mut browser = Browser::start().await;

    browser.open(&format!("{page}#token=wrong")).await;
    assert!(
        browser
            .until(
                Duration::from_secs(5),
                "document.querySelector('#sign-in-error').textContent.includes('refused')"
            )
            .await,
        "a wrong token is refused"
    );
    assert_eq!(
        browser.eval("document.querySelector('#live').hidden").await,
        true,
        "and nothing shows"
    );
    browser.screenshot("sign-in").await;

    browser.open(&format!("{page}#token={TOKEN}")).await;
    assert!(
        browser
            .until(Duration::from_secs(5), "!document.querySelector('#live').hidden")
            .await,
        "signed in"
    );
    assert_eq!(
        browser.eval("location.hash").await,
        "",
        "the token is taken off the address"
    );
    let mut conn = start_call(&h, "CON-1", "stream-CON-1", AudioFormat::ULAW_8K).await;
    let row = "document.querySelector('tr[data-call-id=\"CON-1\"]')";
    assert!(
        browser.until(Duration::from_secs(2), &format!("!!{row}")).await,
        "the call appears within 2 s"
    );
    for _ in 0..25 {
        conn.send_media(&[0xFF; 160]);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let frames_in = format!("parseInt({row}.querySelector('.frames').textContent)");
    assert!(
        browser
            .until(Duration::from_secs(3), &format!("{frames_in} >= 25"))
            .await,
        "its frames rise"
    );
    // By keyboard: the focus on a row's button survives the table's refresh each second.
    let focus = format!("[...{row}.querySelectorAll('button')].find(b => b.textContent === 'Hang up').focus()");
    browser.eval(&focus).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let still = format!("document.activeElement.textContent === 'Hang up' && {row}.contains(document.activeElement)");
    assert_eq!(
        browser.eval(&still).await,
        true,
        "the focus stays on the row's Hang up button"
    );
    listens_in(&mut browser, &conn, row).await;
    browser.screenshot("live").await;

    let press = format!("[...{row}.querySelectorAll('button')].find(b => b.textContent === 'Hang up').click()");
    browser.eval(&press).await;
    assert_eq!(
        browser.eval("document.querySelector('#confirm').open").await,
        true,
        "asks first"
    );
    browser.screenshot("confirm").await;
    browser.eval("document.querySelector('#confirm-ok').click()").await;
    let heard = listen(&mut conn, Duration::from_secs(3)).await;
    assert!(
        heard.contains(&Heard::Terminate),
        "the carrier is told to hang up: {heard:?}"
    );
    let _ = h.gw.db.send(FlushAll).await;
    assert!(
        browser.until(Duration::from_secs(3), &format!("!{row}")).await,
        "the row goes"
    );
    assert!(
        browser
            .until(
                Duration::from_secs(3),
                "document.querySelector('#feed').textContent.includes('admin')"
            )
            .await,
        "the feed says it ended by an admin"
    );

    browser
        .eval("document.querySelector('nav [data-view=history]').click()")
        .await;
    let listed = "!!document.querySelector('#history-table tr[data-call-id=\"CON-1\"]')";
    assert!(
        browser.until(Duration::from_secs(3), listed).await,
        "the call moved to the history"
    );
    let reason = "document.querySelector('#history-table tr[data-call-id=\"CON-1\"]').children[4].textContent";
    assert_eq!(browser.eval(reason).await, "admin");
    browser.screenshot("history").await;

    // A second call, ended by its carrier: the filter keeps the admin's only, and so does the CSV.
    let mut other = start_call(&h, "CON-2", "stream-CON-2", AudioFormat::ULAW_8K).await;
    other.close(1000);
    let _ = listen(&mut other, Duration::from_millis(300)).await;
    let gone = eventually(Duration::from_secs(3), || h.gw.registry.summary().active == 0).await;
    assert!(gone, "the second call ended");
    let _ = h.gw.db.send(FlushAll).await;
    browser
        .eval("document.querySelector('#history-form [name=end_reason]').value = 'admin'")
        .await;
    browser
        .eval("document.querySelector('#history-form').requestSubmit()")
        .await;
    let only_admin =
        "[...document.querySelectorAll('#history-table tbody tr')].map(r => r.dataset.callId).join() === 'CON-1'";
    assert!(
        browser.until(Duration::from_secs(3), only_admin).await,
        "filtered by end reason"
    );
    let downloads = scratch_dir("console-downloads");
    let allow = serde_json::json!({"behavior": "allow", "downloadPath": downloads.display().to_string()});
    browser.call("Page.setDownloadBehavior", allow).await;
    browser.eval("document.querySelector('#csv').click()").await;
    let file = downloads.join("calls-history.csv");
    let saved = eventually(Duration::from_secs(5), || file.exists()).await;
    assert!(saved, "the CSV is downloaded");
    let csv = std::fs::read_to_string(&file).expect("the CSV");
    assert!(csv.starts_with("call_id,attempt,carrier"), "{csv}");
    assert!(
        csv.contains("CON-1") && !csv.contains("CON-2"),
        "the same filter: {csv}"
    );
    browser
        .eval("document.querySelector('#history-table tr[data-call-id=\"CON-1\"]').click()")
        .await;
    let transcript = "!document.querySelector('#call').hidden && [...document.querySelectorAll('#timeline li[data-kind=user_transcript]')].length > 0";
    assert!(
        browser.until(Duration::from_secs(3), transcript).await,
        "its timeline, with its transcript"
    );
    let listened = "!!document.querySelector('#timeline li[data-kind=listen]')";
    assert_eq!(browser.eval(listened).await, true, "and who listened");
    browser.screenshot("call").await;
}

/// Presses "Listen" on the call's row while the caller speaks (a 440 Hz tone) and the agent answers: the
/// page receives both sides.
async fn listens_in(browser: &mut Browser, conn: &CarrierConn, row: &str) {
    let press = format!("[...{row}.querySelectorAll('button')].find(b => b.textContent === 'Listen').click()");
    browser.eval(&press).await;
    let both = "(d => +d.callerBytes > 1000 && +d.agentBytes > 1000)(document.querySelector('#listening').dataset)";
    let mut heard = false;
    for i in 0..100 {
        let mut samples = Vec::new();
        tone(440.0, 8000, i * 160, 160, 8000, &mut samples);
        let mut frame = Vec::new();
        encode_ulaw(&samples, &mut frame);
        conn.send_media(&frame);
        tokio::time::sleep(Duration::from_millis(20)).await;
        if i % 10 == 9 && browser.eval(both).await == true {
            heard = true;
            break;
        }
    }
    assert!(heard, "the page receives both sides of the call");
    let shown = browser
        .eval("document.querySelector('#listen-stats').textContent")
        .await;
    assert!(
        shown
            .as_str()
            .is_some_and(|s| s.contains("caller") && s.contains("agent")),
        "{shown}"
    );
    let level = browser.eval("document.querySelector('#level-caller').value").await;
    let audio = browser.eval("document.querySelector('#listening').dataset.audio").await;
    eprintln!("console: the caller's level meter reads {level} (audio output {audio})");
    if audio == "running" {
        assert!(
            level.as_f64().is_some_and(|l| l > 0.05),
            "the caller's tone shows: {level}"
        );
    }
    let stop = "document.querySelector('tr[data-call-id=\"CON-1\"] button').parentElement.textContent.includes('Stop listening')";
    assert_eq!(browser.eval(stop).await, true, "the row offers to stop");
}
