# Python 3.11 from Debian bookworm's python3 in a venv on PATH, so that `python` and `pip` behave as in the official
# python:3.11-slim-bookworm image (which the Dockerfile uses on a machine that can pull it).
#
# ca/ holds the build machine's own certificate authorities (/usr/local/share/ca-certificates, often empty): where
# HTTPS leaves the machine through an inspecting proxy, pip inside the build needs them, as the host's pip does.
ARG BASE_IMAGE=smartgate-base:bookworm
FROM ${BASE_IMAGE}
COPY ca/ /usr/local/share/ca-certificates/
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && update-ca-certificates >/dev/null \
 && python3 -m venv /opt/python \
 && /opt/python/bin/python -c 'import sys; assert sys.version_info >= (3, 11), sys.version'
ENV PATH=/opt/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt
