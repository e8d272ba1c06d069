# retrainer server image: the wheel with the extras a server needs (postgres, lightgbm),
# a non-root user, a health check on /ready. See "Container" in README.md and compose.yaml.
#   docker build -t retrainer .
# BASE: any Debian-based image with python3 >= 3.11 and its venv module.
ARG BASE=python:3.11-slim

FROM ${BASE} AS wheel
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY src ./src
RUN python3 -m venv /opt/build \
 && /opt/build/bin/pip wheel --quiet --no-deps -w /dist .

FROM ${BASE}
# lightgbm needs the OpenMP runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 --shell /usr/sbin/nologin retrainer \
 && mkdir -p /srv/retrainer \
 && chown retrainer:retrainer /srv/retrainer
COPY --from=wheel /dist /tmp/dist
COPY constraints.txt /tmp/constraints.txt
RUN python3 -m venv /opt/retrainer \
 && /opt/retrainer/bin/pip install --quiet --no-cache-dir -c /tmp/constraints.txt \
      "$(ls /tmp/dist/retrainer-*.whl)[postgres,lightgbm]" \
 && rm -rf /tmp/dist /tmp/constraints.txt
COPY --chmod=755 docker/entrypoint.sh /usr/local/bin/retrainer-entrypoint

ENV PATH=/opt/retrainer/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    RETRAINER_CONFIG=/srv/retrainer/retrainer.yaml \
    RETRAINER_ARTIFACTS=/srv/retrainer/artifacts \
    RETRAINER_PORT=8000
USER retrainer
WORKDIR /srv/retrainer
VOLUME /srv/retrainer
EXPOSE 8000
# /ready: 200 when every served model is loaded and verified (or has no champion yet)
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('RETRAINER_PORT', '8000') + '/ready', timeout=4)"]
ENTRYPOINT ["/usr/local/bin/retrainer-entrypoint"]
