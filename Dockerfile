# syntax=docker/dockerfile:1
# mailsink: a catch-all SMTP server for developers.
#   docker build -t mailsink .
#   docker run --rm -p 1025:1025 -p 8025:8025 -v mailsink-data:/data mailsink
# Every option is a MAILSINK_* variable (docker run -e MAILSINK_WEBHOOK_URL=...) or a flag
# after the image name (docker run mailsink serve --max-message-size 1000000). The PostgreSQL
# driver is in: --db postgresql://USER@HOST:PORT/DBNAME shares one database between nodes.

# -- build: the wheels of mailsink and of everything it needs --------------------------------
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY mailsink ./mailsink
COPY web ./web
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[fast,postgres]"

# -- run: Python and those wheels, nothing else (no compilers, no pip cache, no sources) -------
FROM python:3.12-slim
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels "mailsink[fast,postgres]" \
    && useradd --system --uid 10025 --user-group --home-dir /data --no-create-home mailsink \
    && mkdir /data && chown mailsink:mailsink /data
ENV MAILSINK_SMTP=0.0.0.0:1025 \
    MAILSINK_HTTP=0.0.0.0:8025 \
    MAILSINK_DB=/data/mailsink.db \
    MAILSINK_HTTP_ALLOWED_HOSTS=mailsink \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER mailsink
WORKDIR /data
VOLUME ["/data"]
EXPOSE 1025 8025
# GET /readyz on MAILSINK_HTTP, in Python: the image has no curl. /readyz needs no login and
# answers with or without the base path.
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["mailsink", "healthcheck"]
# SIGTERM (docker stop) shuts down cleanly: every acknowledged message is committed first.
STOPSIGNAL SIGTERM
ENTRYPOINT ["mailsink"]
CMD ["serve"]
