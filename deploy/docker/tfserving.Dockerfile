# TF Serving with the trained model's SavedModel versions baked in (Kubernetes runs it as
# digits-tfserving:local; `digits-` is the project's name, whatever model the image holds).
# This file is rendered for the built-in task; deploy/containers/configs.py renders it for a model
# of your own into artifacts/run/containers/docker/, which `deploy.containers.images build` uses.
#
#   docker build -f deploy/docker/tfserving.Dockerfile -t digits-tfserving:local .   # from the repo root
#   python -m deploy.containers.images build                                            # the same, staged
#
# Needs artifacts/tfserving/digits/<version>/ (python -m serving.tfserving.export). Runs as
# nobody (65534), which needs nothing writable but /tmp.
FROM tensorflow/serving:2.18.0
COPY deploy/config/models.config /config/models.config
COPY serving/tfserving/batching.config /config/batching.config
COPY serving/tfserving/monitoring.config /config/monitoring.config
COPY artifacts/tfserving/digits /models/digits
USER 65534:65534
# gRPC, REST (predictions, model status, Prometheus metrics at /monitoring/prometheus/metrics).
EXPOSE 8500 8501
HEALTHCHECK --interval=5s --timeout=3s --retries=12 --start-period=30s \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8501 && printf 'GET /v1/models/digits HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q AVAILABLE <&3"]
# The image's own entrypoint adds --model_name/--model_base_path; the model config file says it all.
ENTRYPOINT ["tensorflow_model_server"]
CMD ["--port=8500", "--rest_api_port=8501", "--model_config_file=/config/models.config", "--enable_batching", "--batching_parameters_file=/config/batching.config", "--monitoring_config_file=/config/monitoring.config", "--file_system_poll_wait_seconds=5"]
