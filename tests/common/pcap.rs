//! Audio for SIPp's `play_pcap_audio`: speech synthesised by espeak-ng and shaped by sox into a
//! temporary directory, packed as G.711 RTP in a pcap file (Ethernet, IPv4, UDP), one packet
//! per 20 ms. Nothing large is committed: the files are made at test time.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs a command and panics with its error output when it fails.
pub fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?} (apt-get install -y espeak-ng sox): {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `text` spoken by espeak-ng (`voice`, `speed` words per minute) as 8 kHz 16-bit mono samples,
/// followed by `trailing_silence_ms` of silence (what a phone sends while its user is quiet).
pub fn speech(
    dir: &Path,
    text: &str,
    voice: &str,
    speed: u32,
    trailing_silence_ms: u32,
) -> Vec<i16> {
    let raw = dir.join(format!("speech-{}.wav", rand_name()));
    let wav = dir.join(format!("speech8k-{}.wav", rand_name()));
    run(Command::new("espeak-ng")
        .args(["-v", voice, "-s", &speed.to_string(), "-w"])
        .arg(&raw)
        .arg(text));
    run(Command::new("sox")
        .arg("-D")
        .arg(&raw)
        .args(["-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer"])
        .arg(&wav)
        .args([
            "silence", "1", "0.01", "0.1%", "reverse", "silence", "1", "0.01", "0.1%", "reverse",
            "norm", "-6",
        ])
        .args([
            "pad",
            "0",
            &format!("{:.3}", f64::from(trailing_silence_ms) / 1000.0),
        ]));
    read_wav(&wav)
}

/// The samples of an 8 kHz 16-bit mono WAV file.
pub fn read_wav(path: &Path) -> Vec<i16> {
    let mut r = hound::WavReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    r.samples::<i16>().map(|s| s.unwrap_or(0)).collect()
}

fn rand_name() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Writes `samples` as PCMA (`alaw`) or PCMU RTP packets in a pcap file under `dir`; returns
/// its path.
pub fn rtp_pcap(dir: &Path, samples: &[i16], alaw: bool) -> PathBuf {
    use boomerang::media::g711::{Law, encode_frame};
    let law = if alaw { Law::Alaw } else { Law::Ulaw };
    let pt: u8 = if alaw { 8 } else { 0 };
    let mut out = Vec::new();
    // Global header: magic, version 2.4, zone, sigfigs, snaplen, Ethernet.
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for (i, frame) in samples.chunks(160).enumerate() {
        let mut frame = frame.to_vec();
        frame.resize(160, 0);
        let payload = encode_frame(law, &frame);
        let mut rtp = vec![0x80, pt | if i == 0 { 0x80 } else { 0 }];
        rtp.extend_from_slice(&(i as u16).to_be_bytes());
        rtp.extend_from_slice(&((i * 160) as u32).to_be_bytes());
        rtp.extend_from_slice(&0x1234_5678u32.to_be_bytes());
        rtp.extend_from_slice(&payload);
        let udp_len = 8 + rtp.len();
        let ip_len = 20 + udp_len;
        let mut pkt = vec![0u8; 12];
        pkt.extend_from_slice(&[0x08, 0x00]);
        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&(ip_len as u16).to_be_bytes());
        ip.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1]);
        let sum = ip
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
            .sum::<u32>();
        let sum = !(((sum & 0xffff) + (sum >> 16)) as u16);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        pkt.extend_from_slice(&ip);
        pkt.extend_from_slice(&6000u16.to_be_bytes());
        pkt.extend_from_slice(&6000u16.to_be_bytes());
        pkt.extend_from_slice(&(udp_len as u16).to_be_bytes());
        pkt.extend_from_slice(&[0, 0]);
        pkt.extend_from_slice(&rtp);
        let us = i as u64 * 20_000;
        out.extend_from_slice(&((us / 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((us % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(pkt.len() as u32).to_le_bytes());
        out.extend_from_slice(&(pkt.len() as u32).to_le_bytes());
        out.extend_from_slice(&pkt);
    }
    let path = dir.join(format!("audio-{}.pcap", rand_name()));
    std::fs::write(&path, out).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    path
}
