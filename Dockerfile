# syntax=docker/dockerfile:1
# paysieve production image.
#   docker build -t paysieve .
#   docker run --rm --env-file paysieve.env paysieve paysieve db upgrade     # migrations: explicit
#   docker run -d -p 8000:8000 --env-file paysieve.env paysieve              # gunicorn
# Configuration comes only from PAYSIEVE_* variables and, optionally, a file mounted
# read-only and named by PAYSIEVE_CONFIG (-v ./paysieve.toml:/config/paysieve.toml:ro
# -e PAYSIEVE_CONFIG=/config/paysieve.toml). The image holds no secret and no config.
# scripts/dockerfile-smoke.sh runs these same steps in a plain shell (CI has no Docker).

FROM python:3.11-slim AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY adapters ./adapters
# gateway/audit/allowlist.toml links to the audited file here: the wheel ships its content.
COPY config/allowlist.toml ./config/allowlist.toml
# A wheel, not the source tree: the final stage gets the installed package only.
RUN python -m pip wheel --no-deps --wheel-dir /wheels .
RUN python -m venv /opt/paysieve && /opt/paysieve/bin/pip install /wheels/*.whl

FROM python:3.11-slim
ENV PATH=/opt/paysieve/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GUNICORN_HOST=0.0.0.0 \
    PORT=8000 \
    PAYSIEVE_DATABASE_URL=sqlite:////var/lib/paysieve/paysieve.db
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin paysieve \
    && mkdir -p /app /var/lib/paysieve \
    && chown paysieve /var/lib/paysieve
COPY --from=builder /opt/paysieve /opt/paysieve
COPY gunicorn.conf.py /app/gunicorn.conf.py
WORKDIR /app
USER paysieve
# SQLite's file lives here when no PostgreSQL URL is given; mount a volume to keep it.
VOLUME ["/var/lib/paysieve"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=2)"]
CMD ["gunicorn", "-c", "/app/gunicorn.conf.py", "gateway:create_app()"]
