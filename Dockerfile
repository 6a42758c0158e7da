# syntax=docker/dockerfile:1
#
# caretaker: build with the Rust toolchain, run on a slim Debian.
#   docker build -t caretaker .
#   docker run -v /path/to/caretaker.toml:/etc/caretaker/caretaker.toml:ro \
#       -v caretaker-state:/var/lib/caretaker caretaker
#
# The configuration folder may be read-only: caretaker's own state database
# (job history, audit) goes to $CARETAKER_STATE_DIR, /var/lib/caretaker, owned
# by the image's user (uid 10210), unless the configuration sets
# [responder] state_file. Mount the databases, their backup folders and their
# archive_dir writable for that uid (config/caretaker.toml is an example).

FROM rust:1-bookworm AS builder
WORKDIR /src
# .dockerignore keeps target/, .git/ and the deployment files out of the context.
COPY . .
# The registry and target caches speed up rebuilds; the binary is copied out of
# the cached target directory in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
    && install -m 0755 target/release/caretaker /usr/local/bin/caretaker

FROM debian:bookworm-slim
# The runbooks' manual steps (docs/runbooks.md) run inside the container:
# sqlite3, curl (the HTTP API), psmisc (fuser), procps (ps, free, top).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates sqlite3 curl psmisc procps \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10210 caretaker \
    && useradd --system --uid 10210 --gid caretaker --home-dir /var/lib/caretaker \
       --create-home --shell /usr/sbin/nologin caretaker \
    && mkdir -p /etc/caretaker /data \
    && chown caretaker:caretaker /data /var/lib/caretaker
COPY --from=builder /usr/local/bin/caretaker /usr/local/bin/caretaker
ENV CARETAKER_STATE_DIR=/var/lib/caretaker
USER caretaker:caretaker
WORKDIR /var/lib/caretaker
EXPOSE 10210
ENTRYPOINT ["caretaker"]
CMD ["serve", "--config.file=/etc/caretaker/caretaker.toml"]
