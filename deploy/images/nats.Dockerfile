# NATS from Debian's package, entered like the official nats image (arguments go to nats-server); wget for the
# health check (the official nats:*-alpine image has busybox wget).
ARG BASE_IMAGE=smartgate-base:bookworm
FROM ${BASE_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends nats-server wget \
 && rm -rf /var/lib/apt/lists/*
EXPOSE 4222 8222
ENTRYPOINT ["nats-server"]
