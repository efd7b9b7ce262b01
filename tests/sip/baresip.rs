//! Scenario: a real softphone, baresip (Debian's package, headless: audio from a WAV file, the
//! audio it receives dumped to a WAV by its sndfile module), dials route point 8000, hears the
//! welcome prompt, and presses 1 twice as in-band tones; the engine books its callback.

use std::path::Path;
use std::time::Duration;

use crate::common;
use common::{free_port, repo};

/// The demo configuration without a SIP/TCP listener (baresip calls over UDP).
fn no_tcp(spec: &mut boomerang::config::ConfigSpec) {
    spec.listeners.sip_tcp.clear();
}

/// 3 s of silence, key 1 (697 + 1209 Hz, 200 ms), 2.5 s, key 1 again, then silence.
fn write_keys(path: &Path) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    let tone = |w: &mut hound::WavWriter<_>| {
        for i in 0..1600 {
            let t = i as f64 / 8000.0;
            let v = 8000.0
                * ((2.0 * std::f64::consts::PI * 697.0 * t).sin()
                    + (2.0 * std::f64::consts::PI * 1209.0 * t).sin());
            w.write_sample(v as i16).unwrap();
        }
    };
    let silence = |w: &mut hound::WavWriter<_>, secs: f64| {
        for _ in 0..(secs * 8000.0) as usize {
            w.write_sample(0i16).unwrap();
        }
    };
    silence(&mut w, 3.0);
    tone(&mut w);
    silence(&mut w, 2.5);
    tone(&mut w);
    silence(&mut w, 12.0);
    w.finalize().unwrap();
}

fn read_mono(path: &Path) -> Vec<f64> {
    let mut r = hound::WavReader::open(path).unwrap();
    let ch = r.spec().channels as usize;
    let s: Vec<i16> = r.samples::<i16>().map(|x| x.unwrap()).collect();
    s.chunks(ch).map(|c| c[0] as f64).collect()
}

/// RMS of 20 ms frames.
fn envelope(s: &[f64]) -> Vec<f64> {
    s.chunks(160)
        .map(|c| (c.iter().map(|x| x * x).sum::<f64>() / c.len() as f64).sqrt())
        .collect()
}

/// Best normalised correlation of `needle` inside `hay` over every frame offset.
fn best_correlation(hay: &[f64], needle: &[f64]) -> f64 {
    let norm = |v: &[f64]| {
        let m = v.iter().sum::<f64>() / v.len() as f64;
        let d: Vec<f64> = v.iter().map(|x| x - m).collect();
        let n = d.iter().map(|x| x * x).sum::<f64>().sqrt();
        (d, n)
    };
    let (nd, nn) = norm(needle);
    (0..hay.len().saturating_sub(needle.len()))
        .map(|off| {
            let (hd, hn) = norm(&hay[off..off + needle.len()]);
            if hn == 0.0 || nn == 0.0 {
                return 0.0;
            }
            hd.iter().zip(&nd).map(|(a, b)| a * b).sum::<f64>() / (hn * nn)
        })
        .fold(0.0, f64::max)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_hears_the_welcome_and_books_a_callback_with_in_band_keys() {
    let (dir, engine) = common::start_demo(no_tcp).await;
    let target = engine.sip.udp[0];

    let conf = dir.path().join("baresip");
    let out = dir.path().join("out");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    let keys = dir.path().join("keys.wav");
    write_keys(&keys);
    std::fs::write(
        conf.join("accounts"),
        "<sip:+33612345678@127.0.0.1>;regint=0\n",
    )
    .unwrap();
    // Its SIP and RTP ports are reserved for this test process (tests/common): nothing else
    // binds them before baresip does.
    let rtp = free_port();
    std::fs::write(
        conf.join("config"),
        format!(
            "poll_method epoll\nsip_listen 127.0.0.1:{}\nrtp_ports {}-{}\naudio_player aufile,{}\naudio_source aufile,{}\n\
             module_path /usr/lib/baresip/modules\nmodule g711.so\nmodule aufile.so\nmodule sndfile.so\n\
             module_app account.so\nmodule_app menu.so\nsnd_path {}\n",
            free_port(),
            rtp,
            rtp + 3,
            out.join("played.wav").display(),
            keys.display(),
            out.display()
        ),
    )
    .unwrap();
    let run = tokio::process::Command::new("baresip")
        .arg("-f")
        .arg(&conf)
        .args(["-e", &format!("/dial sip:8000@{target}"), "-t", "14"])
        .current_dir(dir.path())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("baresip did not quit")
        .unwrap_or_else(|e| panic!("cannot run baresip (apt-get install -y baresip): {e}"));
    let log = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(log.contains("Call established"), "{log}");

    // The keys pressed as tones reached the flow: a callback was booked on the caller's number.
    let active = engine.callbacks.active();
    assert_eq!(active.len(), 1, "no callback booked; baresip said:\n{log}");
    assert_eq!(active[0].phone, "+33612345678");

    // What baresip heard starts with the welcome prompt.
    let dump = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with("-dec.wav"))
        .expect("no decoded-audio dump from baresip");
    let heard = read_mono(&dump);
    let welcome = read_mono(&repo().join("prompts/welcome.wav"));
    assert!(heard.len() > 8000 * 5, "only {} samples heard", heard.len());
    let first = &heard[..(8000 * 6).min(heard.len())];
    let rms = (first.iter().map(|x| x * x).sum::<f64>() / first.len() as f64).sqrt();
    assert!(rms > 300.0, "the first seconds are silent (rms {rms})");
    let corr = best_correlation(&envelope(first), &envelope(&welcome));
    assert!(
        corr > 0.8,
        "heard audio does not follow the welcome prompt (r = {corr:.2})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_registers_alice_with_the_demo_password_as_the_readme_shows() {
    use boomerang::routing::StateKind;
    let (dir, engine) = common::start_demo(no_tcp).await;
    let target = engine.sip.udp[0];
    let conf = dir.path().join("baresip");
    std::fs::create_dir_all(&conf).unwrap();
    // SIP and RTP ports reserved for this test process (tests/common).
    let rtp = free_port();
    std::fs::write(
        conf.join("config"),
        format!(
            "poll_method epoll\nsip_listen 127.0.0.1:{}\nrtp_ports {}-{}\n\
             module_path /usr/lib/baresip/modules\n\
             module g711.so\nmodule_app account.so\nmodule_app menu.so\n",
            free_port(),
            rtp,
            rtp + 3,
        ),
    )
    .unwrap();
    // The README's account line, with the engine's test port.
    std::fs::write(
        conf.join("accounts"),
        format!("<sip:1001@{target}>;auth_pass=alice-1001;regint=600\n"),
    )
    .unwrap();
    let mut phone = tokio::process::Command::new("baresip")
        .arg("-f")
        .arg(&conf)
        .args(["-t", "10"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run baresip (apt-get install -y baresip): {e}"));
    let agents = engine.router.agents();
    let alice = agents.index_of("alice").unwrap();
    // Watched for as long as baresip runs (it quits after 10 s), not for a fixed time that a
    // loaded machine can overrun before baresip even starts.
    let mut ready = false;
    for _ in 0..3000 {
        if agents.get(alice).state() == StateKind::Ready {
            ready = true;
            break;
        }
        if phone.try_wait().ok().flatten().is_some() {
            // Exited: a registration that succeeded just before is still seen.
            ready = agents.get(alice).state() == StateKind::Ready;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let out = tokio::time::timeout(Duration::from_secs(30), phone.wait_with_output())
        .await
        .expect("baresip did not quit")
        .unwrap();
    assert!(
        ready,
        "baresip's REGISTER with auth_pass did not log alice in:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
