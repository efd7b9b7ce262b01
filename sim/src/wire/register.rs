//! Agents' registrations in wire mode: a REGISTER per agent from a socket of its own, with
//! retransmissions and a digest answer, so that the engine routes calls to the simulated phones.

use super::*;

/// Sends a REGISTER for `user` with a Contact at `contact` from a socket of its own, with
/// retransmissions, answering a digest challenge with `password`; returns the final status.
pub(super) async fn register(
    target: SocketAddr,
    user: &str,
    password: Option<&str>,
    contact: SocketAddr,
    expires: u32,
) -> Result<u16, String> {
    let bind: SocketAddr = if target.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let sock = tokio::net::UdpSocket::bind(bind)
        .await
        .map_err(|e| e.to_string())?;
    sock.connect(target).await.map_err(|e| e.to_string())?;
    let local = sock.local_addr().map_err(|e| e.to_string())?;
    let token = || format!("{:016x}", rand::random::<u64>());
    let host = target.ip();
    let (from_tag, call_id) = (token(), token());
    let message = |cseq: u32, authorization: &str| {
        format!(
            "REGISTER sip:{target} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bK{}\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:{user}@{host}>;tag={from_tag}\r\n\
             To: <sip:{user}@{host}>\r\n\
             Call-ID: {call_id}@boomerang-sim\r\n\
             CSeq: {cseq} REGISTER\r\n\
             Contact: <sip:{user}@{contact}>\r\n\
             {authorization}\
             Expires: {expires}\r\n\
             Content-Length: 0\r\n\r\n",
            token(),
        )
    };
    let (code, text) = transact(&sock, &message(1, "")).await?;
    let (Some(password), 401) = (password, code) else {
        return Ok(code);
    };
    let challenge = text
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(name, _)| name.trim().eq_ignore_ascii_case("WWW-Authenticate"))
                .map(|(_, v)| v.trim().to_string())
        })
        .ok_or("401 without a challenge")?;
    let authorization = boomerang::sip::digest::respond(
        &challenge,
        "REGISTER",
        &format!("sip:{target}"),
        user,
        password,
    )
    .map_err(|e| e.to_string())?;
    Ok(transact(
        &sock,
        &message(2, &format!("Authorization: {authorization}\r\n")),
    )
    .await?
    .0)
}

/// Sends `msg` with retransmissions until a final response; its code and text.
async fn transact(sock: &tokio::net::UdpSocket, msg: &str) -> Result<(u16, String), String> {
    let mut buf = vec![0u8; 4096];
    for _ in 0..7 {
        sock.send(msg.as_bytes()).await.map_err(|e| e.to_string())?;
        let until = clock::tokio_now() + Duration::from_millis(500);
        loop {
            match tokio::time::timeout_at(until, sock.recv(&mut buf)).await {
                Err(_) => break,
                Ok(Err(e)) => return Err(e.to_string()),
                Ok(Ok(n)) => {
                    let text = String::from_utf8_lossy(&buf[..n]).to_string();
                    let code = text
                        .strip_prefix("SIP/2.0 ")
                        .and_then(|r| r.get(..3))
                        .and_then(|c| c.parse::<u16>().ok());
                    match code {
                        Some(c) if c >= 200 => return Ok((c, text)),
                        _ => {}
                    }
                }
            }
        }
    }
    Err("no final response to REGISTER".into())
}
