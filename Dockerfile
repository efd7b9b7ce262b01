# boomerang in a container: built with the Rust toolchain, run on Debian slim as a non-root
# user with the demo configuration, its flows and prompts (README, "Operations").
#
#   docker build -t boomerang .
#   docker run -d --name boomerang -p 5060:5060/udp -p 5060:5060/tcp -p 8080:8080 \
#       -p 20000-20100:20000-20100/udp -v boomerang-data:/opt/boomerang/data boomerang
#   docker stop -t 40 boomerang   # longer than shutdown.drain_seconds (30)

FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock boomerang.yaml ./
COPY src ./src
COPY sim ./sim
COPY benches ./benches
RUN cargo build --release --locked -p boomerang --bin boomerang \
    && strip target/release/boomerang

FROM debian:bookworm-slim
# curl for the HEALTHCHECK; tzdata is compiled into the binary (chrono-tz), nothing else needed.
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /opt/boomerang --shell /usr/sbin/nologin boomerang
WORKDIR /opt/boomerang
COPY --from=build /src/target/release/boomerang /usr/local/bin/boomerang
COPY boomerang.yaml ./boomerang.yaml
COPY ivr-flows ./ivr-flows
COPY prompts ./prompts
# The store (store.data_dir: data, relative to the configuration) is the only thing written.
RUN mkdir data && chown boomerang:boomerang data \
    && boomerang check-config boomerang.yaml
USER boomerang
VOLUME ["/opt/boomerang/data"]
# SIP on UDP and TCP, the REST API with /healthz, /readyz and /metrics. RTP uses
# media.rtp_port_min..rtp_port_max (20000-30000 in the demo): publish the range you need, or run
# with --network host.
EXPOSE 5060/udp 5060/tcp 8080/tcp
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
# SIGTERM (docker stop) drains live calls for shutdown.drain_seconds, then exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["boomerang"]
CMD ["serve", "--config", "/opt/boomerang/boomerang.yaml"]
