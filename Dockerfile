# The one image of every smartgate process: a service (`smartgate serve --services NAME`), the gateway, migrations.
# Used by compose.yaml (the distributed deployment). Models and data come inside the packages: nothing is
# downloaded when a container starts.
#
# BASE_IMAGE: the official image where a registry is reachable; `make images` passes a Python 3.11 built from
# Debian's packages (scripts/images.sh) where none is.
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

# libzbar0: pyzbar (seals, QR codes); libglib2.0-0 and libgomp1: OpenCV and onnxruntime.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libzbar0 libglib2.0-0 libgomp1 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/smartgate
COPY pyproject.toml README.md requirements-deploy.lock ./
# The versions CI tested (scripts/lock.sh), exactly: --no-deps, because rapidocr-onnxruntime asks for
# opencv-python (GUI build) and the lock holds only the headless wheel (both own cv2/).
RUN pip install --no-cache-dir --no-deps -r requirements-deploy.lock
COPY api ./api
COPY services ./services
COPY ledger ./ledger
COPY ocr ./ocr
COPY simulator ./simulator
COPY riskmodel ./riskmodel
RUN pip install --no-cache-dir --no-deps .

RUN useradd --system --uid 10001 --home-dir /var/lib/smartgate --create-home smartgate
USER smartgate
ENV SMARTGATE_VAR_DIR=/var/lib/smartgate \
    SMARTGATE_LOG_JSON=true \
    PYTHONUNBUFFERED=1
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"
CMD ["smartgate", "serve", "--host", "0.0.0.0", "--port", "8000"]
