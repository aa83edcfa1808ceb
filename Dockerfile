# The shop as a small image: built with the full Rust toolchain, run on a slim Debian with the
# binary alone. `docker compose up` starts it with Redis and Postgres (docker-compose.yml).

FROM rust:1-bookworm AS builder
WORKDIR /app

# Dependencies first, in a layer of their own: it is rebuilt only when a Cargo.toml or
# Cargo.lock changes, not on every edit of the code. The workspace's manifests must all be
# there, with stand-ins for the targets they name; only the server is built.
COPY Cargo.toml Cargo.lock ./
COPY loadtests/Cargo.toml loadtests/Cargo.toml
RUN mkdir -p src benches loadtests/src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && for bench in sale_scripts poll_http; do echo 'fn main() {}' > "benches/$bench.rs"; done \
    && echo 'fn main() {}' > loadtests/src/main.rs \
    && cargo build --release --locked -p boxoffice --bin boxoffice \
    && rm -rf src benches loadtests/src

# The code, and what it embeds at build time (scripts, migrations, assets).
COPY src src
COPY benches benches
COPY loadtests/src loadtests/src
COPY lua lua
COPY migrations migrations
COPY assets assets
# The stand-in files above are newer than the copied sources; touching makes cargo rebuild.
RUN touch src/main.rs src/lib.rs && cargo build --release --locked -p boxoffice --bin boxoffice

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin boxoffice
COPY --from=builder /app/target/release/boxoffice /usr/local/bin/boxoffice
USER boxoffice
ENV BOXOFFICE_ADDR=0.0.0.0:8080
EXPOSE 8080
# No curl in the slim image: bash's /dev/tcp asks /healthz.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q '^HTTP/1.[01] 200' <&3"]
ENTRYPOINT ["boxoffice"]
CMD ["serve"]
