# TorchServe with the trained model's archive baked in, for those who prefer an image to mounts
# (and for the Kubernetes manifests, which run it as digits-torchserve:local; `digits-` is the
# project's name, whatever model the image holds). This file is rendered for the built-in task;
# deploy/containers/configs.py renders it for a model of your own into
# artifacts/run/containers/docker/, which `deploy.containers.images build` uses.
#
#   docker build -f deploy/docker/torchserve.Dockerfile -t digits-torchserve:local .   # from the repo root
#   python -m deploy.containers.images build                                              # the same, staged
#
# Needs artifacts/torchserve/model-store/digits.mar (python -m serving.torchserve.archive).
# Runs as the image's non-root user model-server (uid 1000); works on a read-only root
# filesystem with a tmpfs on /tmp (its working directory: key_file.json, logs, the pid file).
FROM pytorch/torchserve:0.12.0-cpu
COPY deploy/config/torchserve.properties /home/model-server/config.properties
COPY deploy/config/torchserve_health.py /home/model-server/health.py
COPY artifacts/torchserve/model-store/digits.mar /home/model-server/model-store/digits.mar
USER 1000:1000
WORKDIR /tmp
ENV LOG_LOCATION=/tmp/logs METRICS_LOCATION=/tmp/logs TEMP=/tmp
# Inference (REST) and gRPC inference. Management (8081) and gRPC management (7071) listen on the
# container's loopback only; metrics (8082, no authentication) on the container network, for a
# scraper there (Kubernetes: deploy/k8s/networkpolicy.yaml), never published.
EXPOSE 8080 7070
HEALTHCHECK --interval=5s --timeout=3s --retries=12 --start-period=30s \
    CMD ["python", "/home/model-server/health.py", "http://127.0.0.1:8081", "digits", "/tmp/key_file.json"]
ENTRYPOINT ["torchserve"]
CMD ["--start", "--foreground", "--ncs", "--ts-config", "/home/model-server/config.properties", "--model-store", "/home/model-server/model-store"]
