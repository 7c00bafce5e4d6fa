# DockNap from source, for machines that can pull base images:
#
#   docker build -t docknap:latest .
#
# Three stages: the web UI (node), the static binary (rust, glibc linked with
# +crt-static, for the build machine's own architecture: amd64 or arm64), and
# a FROM scratch image. The final stage is the same as Dockerfile.scratch
# (what `make image` builds from a binary made by `make build`); the only
# difference is where the files come from. scripts/build-image.sh checks that.
ARG NODE_IMAGE=node:22-bookworm-slim
ARG RUST_IMAGE=rust:1.95-bookworm

FROM ${NODE_IMAGE} AS ui
WORKDIR /src/web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY web/ ./
RUN npm run --silent build

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY --from=ui /src/web/dist ./web/dist
RUN set -eu; \
    target="$(rustc -vV | sed -n 's/^host: //p')"; \
    RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked --target "$target"; \
    mkdir -p /out/rootfs/usr/local/bin /out/rootfs/data /out/rootfs/tmp; \
    cp "target/$target/release/docknap" /out/rootfs/usr/local/bin/docknap; \
    /out/rootfs/usr/local/bin/docknap --version; \
    chown 65534:65534 /out/rootfs/data; \
    chmod 0755 /out/rootfs/data; \
    chmod 1777 /out/rootfs/tmp

FROM scratch

ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=unknown
# The repository URL, when there is one (scripts/build-image.sh passes `git remote get-url origin`).
ARG SOURCE=
LABEL org.opencontainers.image.title="DockNap" \
      org.opencontainers.image.description="Self-hosted scheduler that starts and stops Docker containers and compose stacks on cron schedules" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}"

# /usr/local/bin/docknap (static, UI and time-zone data inside), /data owned
# by 65534:65534 (so a named volume is writable by root and by a non-root
# user alike), /tmp (1777). No shell, no CA certificates: DockNap speaks plain
# HTTP to unix:// or tcp:// engines and to its own port, nothing else.
COPY --from=build /out/rootfs/ /

ENV DOCKNAP_DATA_DIR=/data \
    DOCKNAP_LISTEN=0.0.0.0:8080
VOLUME ["/data"]
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/docknap", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/docknap"]
CMD ["serve"]
