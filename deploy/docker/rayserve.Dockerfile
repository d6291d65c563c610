# Ray Serve's application (serving/rayserve/) over the PyTorch checkpoint: a one-container Ray cluster
# (serving/rayserve/cluster.py: the head, its raylet and the replicas, every Ray address the container's
# loopback; only Serve's proxy binds every interface), from Ray's own lock (requirements/ray.txt, the lock
# .venv-ray is built from), apart from the KServe image: `digits-rayserve:local` (`digits-` is the project's
# name, whatever model the image holds). The KubeRay RayService (deploy/kuberay/) runs its Ray nodes from it.
#
#   docker build -f deploy/docker/rayserve.Dockerfile -t digits-rayserve:local .   # from the repo root
#   python -m deploy.containers.images build                                          # the same, staged
#
# Needs a trained artifacts folder (make train): its spec, manifest and PyTorch checkpoint. Runs as uid
# 10001 on a read-only root filesystem with a tmpfs on /tmp (Ray's session folder) and /dev/shm sized for
# Ray's object store (deploy/containers/plan.py).
FROM python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# The lock, installed exactly (--no-deps: it pins every package, each with its hashes, so pip checks every
# file it downloads). torch first, from PyTorch's CPU index: PyPI's Linux torch 2.13.0 is the CUDA build and
# needs several GB of nvidia-* wheels the lock does not list. The lock pins that same `torch==2.13.0+cpu`,
# with the hash of the wheel `make lock` saw (a local one); an installed package satisfies its line and pip
# does not download or hash it again.
COPY requirements/ray.txt /app/requirements/ray.txt
RUN pip install --no-deps --index-url https://download.pytorch.org/whl/cpu torch==2.13.0+cpu \
    && pip install --no-deps -r /app/requirements/ray.txt \
    && pip check
RUN groupadd --gid 10001 ray && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp \
    --shell /usr/sbin/nologin ray
# Only the project modules the cluster and its replicas import (tests/deploy/test_images.py follows their imports).
COPY core/__init__.py core/connections.py core/contract.py core/manifest.py core/paths.py core/ports.py \
    core/predictor.py core/registry.py core/servers.py core/spec.py core/support.py /app/core/
COPY edge/__init__.py edge/common.py edge/compiled.py edge/eager.py /app/edge/
COPY serving/__init__.py serving/repeats.py serving/tls.py serving/watchdog.py /app/serving/
COPY serving/kserve/__init__.py serving/kserve/bound.py serving/kserve/model.py serving/kserve/versions.py \
    /app/serving/kserve/
COPY serving/rayserve/__init__.py serving/rayserve/app.py serving/rayserve/cluster.py serving/rayserve/private.py \
    serving/rayserve/replicas.py /app/serving/rayserve/
COPY serving/v2/__init__.py serving/v2/declared.py serving/v2/protocol.py serving/v2/rest_app.py /app/serving/v2/
COPY training/__init__.py training/data.py training/downsampling.py training/model_torch.py \
    training/preprocess.py training/spec.py /app/training/
# Compiled now: at run time the root filesystem is read-only.
RUN python -m compileall -q /app
# What it serves, verified against the manifest at start (compose and the launcher mount the
# artifacts folder's own files over these).
COPY artifacts/spec.json artifacts/manifest.json /artifacts/
COPY artifacts/torch/model.pt /artifacts/torch/model.pt
USER 10001:10001
WORKDIR /app
# No usage statistics (cluster.py sets it too, for anything Ray spawns).
ENV HOME=/tmp PYTHONPATH=/app RAY_USAGE_STATS_ENABLED=0
# Serve's proxy: V2 REST.
EXPOSE 8094
# A Ray cluster takes longer to come up than one server: start period and retries together are
# cluster.py's own --start-timeout (240 s).
HEALTHCHECK --interval=5s --timeout=3s --retries=12 --start-period=180s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8094/v2/health/ready', timeout=2)"]
ENTRYPOINT ["python", "-m", "serving.rayserve.cluster"]
CMD ["--artifacts", "/artifacts", "--run", "/tmp/rayserve", "--host", "0.0.0.0", "--http-port", "8094", "--num-cpus", "2", "--object-store-mb", "128"]
