//! Answering-machine detection: its accuracy on greetings synthesised at test time with
//! espeak-ng and sox (varied voices, speeds, noise and answer delays), and the queue's action
//! over SIP when a SIPp customer's phone is answered by a machine.

use std::path::Path;
use std::time::Duration;

use boomerang::call::DialResult;
use boomerang::callback::model::{CallbackState, CompletionReason};
use boomerang::callback::service::{CreateRequest, api_callback};
use boomerang::config::{AmdSpec, MachineAction};
use boomerang::media::voice::{AmdResult, AmdTimings, classify};

use crate::common::{self, free_port, pcap};

const MACHINES: [&str; 10] = [
    "Hi, you have reached the voicemail of John Smith. I am not available right now, please leave a message after the tone.",
    "Hello, you have reached Anna and Paul. We cannot take your call at the moment. Leave your name and number and we will call you back.",
    "The person you are calling is not available. Please record your message after the tone. When you have finished, hang up.",
    "Thank you for calling Green Garden Supplies. Our office is closed. Our opening hours are nine to five, Monday to Friday.",
    "Hey, it's Mike. Can't get to the phone right now, so leave me a message and I'll get back to you as soon as I can.",
    "You have reached the mailbox of doctor Evans. If this is an emergency, please hang up and dial the emergency number.",
    "Hello. Sorry we missed your call. Please leave a detailed message including your phone number, and we will return your call.",
    "This is Sarah. I'm either on the other line or away from my desk. Please leave a message and have a wonderful day.",
    "Welcome to the voice mail service. The subscriber is not available. Please leave a message after the signal.",
    "Hi there, you've reached the Johnson family. We are out at the moment, leave a message and we'll call you back later.",
];

const HUMANS: [&str; 10] = [
    "Hello?",
    "Hello, this is Mark.",
    "Yes?",
    "Hi, who is this?",
    "Good morning.",
    "Hello, Anna speaking.",
    "Hi.",
    "Yeah, hello?",
    "Smith residence.",
    "Hello, who's calling?",
];

const VOICES: [&str; 4] = ["en-us", "en-gb", "en-us+f3", "en-gb-scotland"];

/// A deterministic noise generator (line noise added to a greeting).
fn noise(seed: u32, len: usize, amplitude: f64) -> Vec<i16> {
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            ((f64::from(x) / f64::from(u32::MAX) * 2.0 - 1.0) * amplitude) as i16
        })
        .collect()
}

/// A greeting as the dialler hears it: `lead_ms` of silence after the answer, the speech, then
/// `tail_ms` of silence (a person waiting for us), with noise over the whole.
fn greeting(dir: &Path, text: &str, i: usize, lead_ms: u32, tail_ms: u32) -> Vec<i16> {
    let voice = VOICES[i % VOICES.len()];
    let speed = 130 + (i as u32 * 13) % 60;
    let mut s = vec![0i16; lead_ms as usize * 8];
    s.extend(pcap::speech(dir, text, voice, speed, tail_ms));
    let amp = [0.0, 60.0, 200.0, 500.0][i % 4];
    let hiss = noise(i as u32 + 1, s.len(), amp);
    for (a, n) in s.iter_mut().zip(hiss) {
        *a = a.saturating_add(n);
    }
    s
}

#[test]
fn amd_accuracy_on_synthesised_greetings() {
    let dir = tempfile::tempdir().unwrap();
    let timings = AmdTimings::default();
    // Rows: truth (machine, human); columns: machine, human, unknown.
    let mut matrix = [[0u32; 3]; 2];
    let col = |r: AmdResult| match r {
        AmdResult::Machine => 0,
        AmdResult::Human => 1,
        AmdResult::Unknown => 2,
    };
    for i in 0..20 {
        let m = greeting(
            dir.path(),
            MACHINES[i % 10],
            i,
            100 + (i as u32 * 97) % 700,
            500,
        );
        matrix[0][col(classify(&m, timings))] += 1;
        let h = greeting(
            dir.path(),
            HUMANS[i % 10],
            i + 1,
            100 + (i as u32 * 61) % 900,
            3000,
        );
        matrix[1][col(classify(&h, timings))] += 1;
    }
    let correct = matrix[0][0] + matrix[1][1];
    let accuracy = f64::from(correct) / 40.0;
    println!("AMD on 40 synthesised greetings (espeak-ng, 4 voices, 130-190 wpm, 4 noise levels)");
    println!("truth \\ heard   machine  human  unknown");
    println!(
        "machine (20)    {:>7}  {:>5}  {:>7}",
        matrix[0][0], matrix[0][1], matrix[0][2]
    );
    println!(
        "human (20)      {:>7}  {:>5}  {:>7}",
        matrix[1][0], matrix[1][1], matrix[1][2]
    );
    println!("accuracy {:.1} %", accuracy * 100.0);
    assert!(accuracy >= 0.85, "accuracy {accuracy}: {matrix:?}");
    // A person taken for a machine is the costly mistake (they would be hung up on).
    assert!(matrix[1][0] <= 1, "{matrix:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_machine_greeting_gets_the_queues_message_over_sip() {
    let tmp = tempfile::tempdir().unwrap();
    let voice = pcap::speech(tmp.path(), MACHINES[0], "en-us", 160, 2000);
    let file = pcap::rtp_pcap(tmp.path(), &voice, false);
    let scenario =
        std::fs::read_to_string(common::repo().join("tests/sipp/customer-plays-greeting.xml"))
            .unwrap()
            .replace("@PCAP@", &file.display().to_string());
    let scenario_path = tmp.path().join("customer-plays-greeting.xml");
    std::fs::write(&scenario_path, scenario).unwrap();
    let trunk_port = free_port();
    let mut trunk = common::sipp_server(scenario_path.to_str().unwrap(), trunk_port, 1);
    let (_dir, engine) = common::start_demo(|spec| {
        spec.listeners.sip_tcp.clear();
        common::demo_trunk(spec).port = trunk_port;
        common::demo_queue(spec, "Sales_VQ_CB").amd = Some(AmdSpec {
            on_machine: MachineAction::Message,
            message_prompt: Some("machine-message".into()),
            max_human_greeting_ms: 1500,
            machine_greeting_ms: 2600,
            max_analysis_ms: 5000,
        });
    })
    .await;
    let rec = engine
        .callbacks
        .create(CreateRequest {
            callback: api_callback("Sales_VQ_CB", "+33612345678", None),
            check_slot: false,
            ewt_at_offer_seconds: None,
            position_at_offer: None,
        })
        .await
        .unwrap();
    // Alice becomes ready (her phone is never rung: a machine is not connected).
    common::register_alice(engine.sip.udp[0], &format!("127.0.0.1:{}", free_port())).await;
    let mut done = None;
    let mut last = None;
    for _ in 0..400 {
        let r = engine.callbacks.get(rec.id).await.unwrap();
        if let CallbackState::Completed(why) = r.state {
            done = Some((why, r));
            break;
        }
        last = Some(r);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let Some((why, r)) = done else {
        let agents = engine.router.agents();
        let alice = agents.index_of("alice").map(|i| agents.get(i).state());
        let _ = trunk.start_kill();
        let sipp = trunk.wait_with_output().await;
        panic!(
            "the callback never completed: {last:#?}; alice {alice:?}; the customer's SIPp: {sipp:?}"
        )
    };
    assert_eq!(why, CompletionReason::MessageLeft, "{:?}", r.history);
    assert_eq!(r.metrics.attempts.len(), 1);
    assert_eq!(r.metrics.attempts[0].result, DialResult::AnsweringMachine);
    assert!(r.metrics.connected_agent.is_none());
    common::sipp_succeeded(&mut trunk, "the customer's SIPp").await;
}
