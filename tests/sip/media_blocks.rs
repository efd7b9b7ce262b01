//! The media blocks over SIP against SIPp: a caller leaving a voicemail (Record) plays speech
//! made with espeak-ng into an RTP pcap, and the WAV the engine wrote holds it; the
//! administration lists and serves it by role.

use std::path::Path;
use std::time::Duration;

use boomerang::api::admin::auth::{Role, hash_password};
use boomerang::config::{AdminUserSpec, RoutePointSpec};
use boomerang::media::voice::level_dbfs;
use serde_json::Value;

use crate::common::{self, pcap};

const PASSWORD: &str = "correct horse";

const VOICEMAIL: &str = "application: voicemail
type: default
self_service:
  - type: record
    prompts: [leave-message]
    max_seconds: 20
    silence_seconds: 2
    on_failure: bye
  - type: play_message
    prompts: [goodbye]
  - type: terminate_call
    id: bye
";

/// The repository's flows plus `files`, in a temporary directory.
pub fn flows_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let flows = common::flows_with_ringing_queue();
    for (name, text) in files {
        std::fs::write(flows.path().join(name), text).unwrap();
    }
    flows
}

/// Route point `number` to `flow` in `flows`.
pub fn route(spec: &mut boomerang::config::ConfigSpec, number: &str, flow: &str, flows: &Path) {
    spec.route_points.insert(
        0,
        RoutePointSpec {
            number: number.into(),
            flow: flow.into(),
            description: String::new(),
        },
    );
    spec.flows_dir = flows.display().to_string();
}

/// An administration user `name` with `role`.
fn user(name: &str, role: Role) -> AdminUserSpec {
    AdminUserSpec {
        name: name.into(),
        password_hash: hash_password(PASSWORD).unwrap(),
        roles: vec![role],
        queues: None,
    }
}

async fn login(url: &str, name: &str) -> String {
    common::admin_login(url, name, PASSWORD).await
}

/// SIPp's caller-plays-audio.xml for `pcap` after `pause_ms`, written under `dir`.
pub fn audio_caller(dir: &Path, pcap: &Path, pause_ms: u32) -> std::path::PathBuf {
    let text = std::fs::read_to_string(common::repo().join("tests/sipp/caller-plays-audio.xml"))
        .unwrap()
        .replace("@PAUSE_MS@", &pause_ms.to_string())
        .replace("@PCAP@", &pcap.display().to_string());
    let path = dir.join("caller-plays-audio.xml");
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voicemail_is_recorded_to_a_wav_listed_and_served_by_role() {
    let tmp = tempfile::tempdir().unwrap();
    let voice = pcap::speech(
        tmp.path(),
        "Hello, this is Anna. Please call me back about my order tomorrow.",
        "en-us",
        150,
        3000,
    );
    let spoken_ms = (voice.len() as u64 / 8).saturating_sub(3000);
    let file = pcap::rtp_pcap(tmp.path(), &voice, false);
    let flows = flows_with(&[("voicemail.yaml", VOICEMAIL)]);
    let (dir, engine) = common::start_demo(|spec| {
        spec.listeners.sip_tcp.clear();
        route(spec, "8010", "voicemail.yaml", flows.path());
        spec.admin.users = vec![user("sup", Role::Supervisor), user("mon", Role::Monitor)];
    })
    .await;
    // leave-message (4.3 s) and the beep (0.4 s) play before recording starts.
    let scenario = audio_caller(tmp.path(), &file, 5000);
    let out = common::sipp_client(&scenario, engine.sip.udp[0], &["-s", "8010"]).await;
    assert!(out.status.success(), "{}", common::sipp_report(&out));

    let url = format!("http://{}", engine.http_addr);
    let sup = login(&url, "sup").await;
    let client = reqwest::Client::new();
    let mut list = Value::Null;
    // Up to 20 s (was 5 s): written after the call, later on a loaded machine.
    for _ in 0..200 {
        list = client
            .get(format!("{url}/admin/recordings"))
            .bearer_auth(&sup)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if list["data"].as_array().is_some_and(|a| !a.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rec = &list["data"][0];
    assert_eq!(rec["ended"], "silence", "{list}");
    assert_eq!(rec["dnis"], "8010");
    let id = rec["id"].as_str().unwrap();
    let path = boomerang::recordings::path_of(&dir.path().join("data"), id.parse().unwrap());
    let samples = pcap::read_wav(&path);
    let ms = samples.len() as u64 / 8;
    // The speech, then the 0.5 s of silence kept after it.
    assert!(
        ms + 700 >= spoken_ms + 500 && ms <= spoken_ms + 500 + 700,
        "recorded {ms} ms for {spoken_ms} ms of speech"
    );
    assert_eq!(rec["durationMs"].as_u64(), Some(ms));
    let loud = samples
        .chunks(160)
        .filter(|f| level_dbfs(f) > -30.0)
        .count()
        * 20;
    assert!(
        loud as u64 * 2 >= spoken_ms,
        "{loud} ms above -30 dBFS in {ms} ms"
    );

    // Supervisors download it; monitors may list but not download.
    let wav = client
        .get(format!("{url}/admin/recordings/{id}"))
        .bearer_auth(&sup)
        .send()
        .await
        .unwrap();
    assert_eq!(wav.status(), 200);
    assert_eq!(wav.headers()["content-type"], "audio/wav");
    assert_eq!(wav.bytes().await.unwrap(), std::fs::read(&path).unwrap());
    let mon = login(&url, "mon").await;
    let denied = client
        .get(format!("{url}/admin/recordings/{id}"))
        .bearer_auth(&mon)
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 403);
    let missing = client
        .get(format!("{url}/admin/recordings/{}", uuid::Uuid::new_v4()))
        .bearer_auth(&sup)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

const SALES_WITH_SURVEY: &str = "application: sales with survey
type: default
self_service:
  - type: play_message
    prompts: [welcome]
assisted_service:
  - type: route_call
    queue: Sales_VQ
    timeout_seconds: 60
";

const SURVEY: &str = "application: post-call survey
type: default
self_service:
  - type: survey
    name: csat
    intro: [survey-intro]
    questions:
      - {id: agent, prompts: [survey-question-1]}
      - {id: recommend, prompts: [survey-question-2]}
    thanks: [survey-thanks]
    timeout_seconds: 10
";

/// RFC 4733 replays of `key` after `pause_ms`, for call-in-caller.xml's @KEYS@.
fn key_after(pause_ms: u32, key: char) -> String {
    format!(
        "  <pause milliseconds=\"{pause_ms}\"/>\n  <nop><action><exec play_pcap_audio=\"/usr/share/sip-tester/dtmf_2833_{key}.pcap\"/></action></nop>\n  <pause milliseconds=\"400\"/>\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_hangs_up_and_the_caller_answers_the_survey_exported_as_csv() {
    let tmp = tempfile::tempdir().unwrap();
    let flows = flows_with(&[
        ("sales-survey.yaml", SALES_WITH_SURVEY),
        ("survey.yaml", SURVEY),
    ]);
    let agent_port = common::free_port();
    let mut phone = common::sipp_server("agent-answers.xml", agent_port, 1);
    let (_dir, engine) = common::start_demo(|spec| {
        spec.listeners.sip_tcp.clear();
        route(spec, "8011", "sales-survey.yaml", flows.path());
        route(spec, "8020", "survey.yaml", flows.path());
        common::demo_queue(spec, "Sales_VQ").survey_route_point = Some("8020".into());
        spec.admin.users = vec![user("sup", Role::Supervisor), user("mon", Role::Monitor)];
    })
    .await;
    common::register_alice(engine.sip.udp[0], &format!("127.0.0.1:{agent_port}")).await;
    // Welcome, the agent's 3 s, then the survey's intro: the keys come during the intro and
    // the questions (they are kept until each question takes one).
    let keys = key_after(9000, '4') + &key_after(2500, '5');
    let scenario = std::fs::read_to_string(common::repo().join("tests/sipp/call-in-caller.xml"))
        .unwrap()
        .replace("@DNIS@", "8011")
        .replace("@ANI@", "+33612345678")
        .replace("@KEYS@", &keys);
    let path = tmp.path().join("survey-caller.xml");
    std::fs::write(&path, scenario).unwrap();
    let call_id = format!("survey-{}", uuid::Uuid::new_v4());
    let out = common::sipp_client(&path, engine.sip.udp[0], &["-cid_str", &call_id]).await;
    assert!(out.status.success(), "{}", common::sipp_report(&out));
    common::sipp_succeeded(&mut phone, "the agent's SIPp").await;

    let url = format!("http://{}", engine.http_addr);
    let client = reqwest::Client::new();
    let sup = login(&url, "sup").await;
    let mut csv = String::new();
    // Up to 20 s (was 5 s): written after the call, later on a loaded machine.
    for _ in 0..200 {
        csv = client
            .get(format!("{url}/admin/surveys.csv?survey=csat"))
            .bearer_auth(&sup)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if csv.lines().count() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "responseId,at,survey,callId,ani,queue,agent,callbackId,question,answer"
    );
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(
        lines[1].contains(&format!(
            ",csat,{call_id},+33612345678,Sales_VQ,alice,,agent,4"
        )),
        "{csv}"
    );
    assert!(lines[2].ends_with(",recommend,5"), "{csv}");
    let mon = login(&url, "mon").await;
    let denied = client
        .get(format!("{url}/admin/surveys.csv"))
        .bearer_auth(&mon)
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 403);
}
