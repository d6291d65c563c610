# nginx with the browser demo baked in (Kubernetes runs it as digits-web:local).
#
#   docker build -f deploy/docker/web.Dockerfile -t digits-web:local .   # from the repo root
#   python -m deploy.containers.images build                               # the same, staged
#
# Needs artifacts/web/ (the built demo). Runs as the image's unprivileged nginx user (101) on
# port 8000; with a read-only root filesystem it needs a tmpfs on /tmp (pid file, temp paths).
FROM nginx:1.27-alpine@sha256:65645c7bb6a0661892a8b03b89d0743208a18dd2f3f17a54ef4b76fb8e2f2a10
COPY deploy/config/nginx.conf /etc/nginx/nginx.conf
COPY artifacts/web /usr/share/nginx/html
USER 101:101
EXPOSE 8000
HEALTHCHECK --interval=5s --timeout=3s --retries=12 --start-period=30s \
    CMD ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8000/"]
CMD ["nginx", "-g", "daemon off;"]
