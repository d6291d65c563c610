# KServe's ModelServer running the project's kserve.Model (serving/kserve/) for either framework:
# one image, digits-kserve:local, for both KServe services (`digits-` is the project's name,
# whatever model the image holds). The command picks the framework and ports, not a build arg:
# both models and both frameworks are in the image, so the two services (compose, Kubernetes,
# the KServe InferenceService) share every layer and differ only in their arguments. The CMD and
# HEALTHCHECK below are kserve-torch's; the kserve-tf service passes its own (deploy/containers/plan.py).
# Ray Serve has an image of its own (rayserve.Dockerfile: Ray's lock).
#
#   docker build -f deploy/docker/kserve.Dockerfile -t digits-kserve:local .   # from the repo root
#   python -m deploy.containers.images build                                      # the same, staged
#   docker run digits-kserve:local --framework tensorflow --http-port 8092 --grpc-port 8093  # the TF model
#
# Needs a trained artifacts folder (make train): its spec, manifest, PyTorch checkpoint and Keras
# model. Runs as uid 10001 on a read-only root filesystem with a tmpfs on /tmp (HOME: Keras's config).
FROM python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# The lock .venv-kserve is built from (`make setup`), installed exactly (--no-deps: it pins every
# package, each with its hashes, so pip checks every file it downloads). torch first, from PyTorch's CPU
# index: PyPI's Linux torch 2.13.0 is the CUDA build and needs several GB of nvidia-* wheels the lock does
# not list. The lock pins that same `torch==2.13.0+cpu`, with the hash of the wheel `make lock` saw (a local
# one); an installed package satisfies its line and pip does not download or hash it again.
COPY requirements/kserve.txt /app/requirements/kserve.txt
RUN pip install --no-deps --index-url https://download.pytorch.org/whl/cpu torch==2.13.0+cpu \
    && pip install --no-deps -r /app/requirements/kserve.txt \
    && pip check
RUN groupadd --gid 10001 kserve && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp \
    --shell /usr/sbin/nologin kserve
# Only the project modules the servers import (tests/deploy/test_images.py follows their imports).
COPY core/__init__.py core/connections.py core/contract.py core/manifest.py core/paths.py core/predictor.py \
    core/registry.py core/servers.py core/spec.py core/support.py /app/core/
COPY edge/__init__.py edge/common.py edge/compiled.py edge/eager.py /app/edge/
COPY serving/__init__.py serving/repeats.py serving/tls.py serving/watchdog.py /app/serving/
COPY serving/kserve/__init__.py serving/kserve/bound.py serving/kserve/model.py serving/kserve/server.py \
    serving/kserve/versions.py /app/serving/kserve/
COPY serving/v2/__init__.py serving/v2/declared.py serving/v2/protocol.py serving/v2/rest_app.py /app/serving/v2/
COPY training/__init__.py training/data.py training/downsampling.py training/model_torch.py \
    training/preprocess.py training/spec.py /app/training/
# Compiled now: at run time the root filesystem is read-only.
RUN python -m compileall -q /app
# What it serves, verified against the manifest at start (compose and the launcher mount the
# artifacts folder's own files over these).
COPY artifacts/spec.json artifacts/manifest.json /artifacts/
COPY artifacts/torch/model.pt /artifacts/torch/model.pt
COPY artifacts/tensorflow/model.keras /artifacts/tensorflow/model.keras
USER 10001:10001
WORKDIR /app
ENV HOME=/tmp PYTHONPATH=/app
# V2/V1 REST and metrics, V2 gRPC: PyTorch 8090/8091, TensorFlow 8092/8093.
EXPOSE 8090 8091 8092 8093
HEALTHCHECK --interval=5s --timeout=3s --retries=12 --start-period=30s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8090/v2/health/ready', timeout=2)"]
ENTRYPOINT ["python", "-m", "serving.kserve.server", "--artifacts", "/artifacts", "--host", "0.0.0.0"]
CMD ["--framework", "torch", "--http-port", "8090", "--grpc-port", "8091"]
