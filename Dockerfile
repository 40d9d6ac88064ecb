# keygate's container image: built in a Rust image, run from a slim Debian with the binary and the
# one shared library it links (libpq, for PostgreSQL; SQLite is compiled in), as a non-root user.
# Templates and static files are compiled into the binary.
#
#   docker build -t keygate .
#   docker run --rm -p 8000:8000 -e KEYGATE_ISSUER_URL=... -e KEYGATE_CLIENT_ID=... \
#     -e KEYGATE_CLIENT_SECRET=... -e KEYGATE_PUBLIC_URL=https://... -e KEYGATE_SESSION_SECRET=... \
#     -v keygate-data:/var/lib/keygate keygate

FROM rust:1-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin keygate

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq5 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --create-home --home-dir /var/lib/keygate keygate
COPY --from=build /src/target/release/keygate /usr/local/bin/keygate
USER 10001
WORKDIR /var/lib/keygate
ENV KEYGATE_BIND=0.0.0.0:8000 \
    KEYGATE_DATABASE_URL=/var/lib/keygate/keygate.db \
    KEYGATE_LOG_FORMAT=json
VOLUME /var/lib/keygate
EXPOSE 8000
# Orchestrators probe GET /healthz (alive) and GET /readyz (ready; 503 while draining).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/keygate"]
