//! Starting the SIP front: prompts and flows loaded, the user agent bound, registrations
//! restored, and callbacks dialled through it.

use std::sync::Arc;

use crate::call::Dialer;
use crate::flow::FlowSet;

use super::{Core, EngineError, callbacks, sip};

/// `sip.public_host` as the address for SDP and, when it is a host name, the name for Contact
/// and Via; a name is resolved once at start and must give an address.
async fn public_host(
    host: Option<&str>,
) -> Result<(Option<std::net::IpAddr>, Option<String>), EngineError> {
    let Some(host) = host else {
        return Ok((None, None));
    };
    if let Ok(ip) = host.parse() {
        return Ok((Some(ip), None));
    }
    let refused = |why: String| EngineError::PublicHost {
        host: host.to_string(),
        why,
    };
    let mut addrs = tokio::net::lookup_host((host, 5060))
        .await
        .map_err(|e| refused(e.to_string()))?
        .map(|a| a.ip())
        .collect::<Vec<_>>();
    // An IPv4 address first: the SDP of most peers expects one.
    addrs.sort_by_key(|ip| !ip.is_ipv4());
    let ip = addrs
        .first()
        .copied()
        .ok_or_else(|| refused("no address".into()))?;
    Ok((Some(ip), Some(host.to_string())))
}

/// Where SIP's tasks are tracked.
pub(super) struct SipParts<'a> {
    pub(super) tasks: &'a crate::ops::shutdown::Tasks,
    pub(super) calls: &'a tokio_util::task::TaskTracker,
    pub(super) metrics: &'a Arc<crate::ops::metrics::Metrics>,
}

/// Loads prompts and flows, starts the user agent, and lets callbacks be dialled through it.
pub(super) async fn start_sip(
    core: &Core,
    parts: SipParts<'_>,
) -> Result<(sip::SipAddrs, crate::sip::ua::UaHandle), EngineError> {
    let Core {
        config,
        clock,
        dispatch,
        store,
        ..
    } = core;
    use crate::media::prompts::PromptLibrary;
    use crate::media::session::{PacerOptions, set_pacer_options};
    let priority = config.spec.media.rtp_realtime_priority;
    set_pacer_options(PacerOptions {
        realtime_priority: (priority > 0).then_some(i32::from(priority)),
        ..PacerOptions::DEFAULT
    });
    let prompts = Arc::new(
        PromptLibrary::load(config.prompts_dir())
            .map_err(|e| EngineError::Prompts(e.to_string()))?,
    );
    let names: std::collections::BTreeSet<String> =
        prompts.names().into_iter().map(str::to_string).collect();
    let flows = Arc::new(FlowSet::load(config, Some(&names)).map_err(|errs| {
        EngineError::Flows(
            errs.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })?);
    tracing::info!(
        flows = flows.len(),
        prompts = prompts.len(),
        "flows and prompts loaded"
    );
    let live = Arc::new(crate::flow::LiveFlows::new(config, (*flows).clone()));
    {
        let (live, config, names) = (live.clone(), config.clone(), names.clone());
        parts.tasks.spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                match live.reload_if_changed(&config, Some(&names)) {
                    crate::flow::Reload::Unchanged => {}
                    crate::flow::Reload::Reloaded(n) => {
                        tracing::info!(flows = n, "flows reloaded: new calls take the new version")
                    }
                    crate::flow::Reload::Rejected(errors) => {
                        for e in errors {
                            tracing::error!("flow edit refused, the previous version stays:\n{e}");
                        }
                    }
                }
            }
        });
    }
    let front = Arc::new(sip::SipFront {
        config: config.clone(),
        flows: live,
        services: std::sync::OnceLock::new(),
        prompts: prompts.clone(),
        clock: clock.clone(),
        dispatch: dispatch.clone(),
        ua: std::sync::OnceLock::new(),
        keeper: sip::keep_registrations(
            store.clone(),
            clock.clone(),
            config.spec.cluster.node_id.clone(),
        ),
        calls: parts.calls.clone(),
        metrics: parts.metrics.clone(),
    });
    let s = &config.spec.sip;
    let (public_ip, public_name) = public_host(s.public_host.as_deref()).await?;
    // SIP timers on the engine's clock: a test's manual clock moves them too.
    let ua = crate::sip::ua::start_with_clock(
        crate::sip::ua::UaConfig {
            udp: config.spec.listeners.sip_udp.clone(),
            tcp: config.spec.listeners.sip_tcp.clone(),
            public_ip,
            public_name,
            registrar: crate::sip::registrar::RegistrarConfig {
                max_expires: s.max_register_expires_seconds.max(60),
                ..Default::default()
            },
            authenticate_invite: s.authenticate_invite,
            authenticate_register: s.authenticate_register,
            session_expires: s.session_expires_seconds,
            limits: crate::sip::ua::UaLimits {
                max_calls: s.max_calls as usize,
                max_setup_calls: s.max_setup_calls as usize,
                max_queue_delay: std::time::Duration::from_millis(s.max_queue_delay_ms.into()),
                workers: s.workers as usize,
                transport: crate::sip::transport::TransportLimits {
                    message: crate::sip::message::ParseLimits {
                        max_bytes: s.max_message_bytes as usize,
                        max_headers: s.max_headers as usize,
                    },
                    header_timeout: std::time::Duration::from_secs(
                        s.tcp_header_timeout_seconds.into(),
                    ),
                    body_timeout: std::time::Duration::from_secs(s.tcp_body_timeout_seconds.into()),
                    idle_timeout: std::time::Duration::from_secs(s.tcp_idle_timeout_seconds.into()),
                    max_connections: s.tcp_max_connections as usize,
                    max_connections_per_address: s.tcp_max_connections_per_address as usize,
                },
                ..Default::default()
            },
            register_auth: (s.authenticate_register || s.authenticate_invite).then(|| {
                crate::sip::ua::RegisterAuth {
                    realm: s.realm.clone(),
                    passwords: config
                        .spec
                        .agents
                        .iter()
                        .filter_map(|a| {
                            let user = a.sip_user.clone().unwrap_or_else(|| a.id.clone());
                            Some(user).zip(a.password.clone())
                        })
                        .collect(),
                    clock: clock.clone(),
                    offer_sha256: s.digest_sha256,
                }
            }),
        },
        Arc::new(front.clone()),
        clock.clone(),
    )
    .await
    .map_err(|source| EngineError::Bind {
        addr: config
            .spec
            .listeners
            .sip_udp
            .first()
            .or(config.spec.listeners.sip_tcp.first())
            .copied()
            .unwrap_or_else(|| ([0, 0, 0, 0], 5060).into()),
        source,
    })?;
    let dialer: Arc<dyn Dialer> = Arc::new(crate::sip::leg::SipDialer {
        ua: ua.clone(),
        config: config.clone(),
        prompts,
        clock: clock.clone(),
    });
    let services = Arc::new(core.flow_services(dialer.clone()));
    let _ = services.flows.set(front.flows.clone());
    let _ = front.services.set(services.clone());
    let (udp, tcp) = ua.local_addrs();
    // Phones registered before a restart are back until their registration expires.
    let kept = sip::kept_registrations(store, clock, &config.spec.cluster.node_id).await?;
    tracing::info!(
        registrations = kept.len(),
        "phone registrations recovered from the store"
    );
    ua.restore(kept);
    let _ = front.ua.set(ua.clone());
    let runner = Arc::new(callbacks::CallbackRunner {
        services,
        flows,
        customers: dialer,
    });
    runner.install();
    tracing::info!(?udp, ?tcp, "SIP listening");
    Ok((sip::SipAddrs { udp, tcp }, ua))
}
