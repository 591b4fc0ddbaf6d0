# syntax=docker/dockerfile:1
# Multi-stage build of the provider: a release build in the Rust image, then
# only the binary (and the bundled plugin libraries) in a slim runtime image
# that runs as an unprivileged user. Themes and locales are compiled in.
#   docker build -t idp .
#   docker run -p 8080:8080 -v idp-data:/var/lib/idp idp
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p idp \
        -p idp-plugin-health-code -p idp-plugin-e-certificate \
 && mkdir -p /out/plugins \
 && cp target/release/idp /out/idp \
 && cp target/release/libidp_plugin_health_code.so target/release/libidp_plugin_e_certificate.so /out/plugins/

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 idp \
 && useradd --system --uid 10001 --gid idp --home-dir /var/lib/idp --shell /usr/sbin/nologin idp \
 && mkdir -p /var/lib/idp /opt/idp/plugins \
 && chown idp:idp /var/lib/idp
COPY --from=build /out/idp /usr/local/bin/idp
# Available, not loaded: set IDP_PLUGINS__DIR=/opt/idp/plugins to load them.
COPY --from=build /out/plugins/ /opt/idp/plugins/
USER 10001:10001
ENV IDP_LISTEN=0.0.0.0:8080 \
    IDP_DATA_DIR=/var/lib/idp \
    IDP_LOG_FORMAT=json
VOLUME ["/var/lib/idp"]
EXPOSE 8080
# `idp serve` drains in-flight requests on SIGTERM (shutdown_grace_secs).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/idp"]
CMD ["serve"]
