# One image for every AIA Engine process; docker-compose.yml (or a Procfile platform) picks the
# command: aia-engine serve | worker | worker --webhooks | beat | flower | migrate.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    AIA_DATA_DIR=/data \
    API_HOST=0.0.0.0

WORKDIR /app
COPY pyproject.toml README.md celeryconfig.py ./
COPY aia_engine ./aia_engine
COPY api ./api
COPY workers ./workers
COPY workflows ./workflows
COPY cli ./cli
# The Python SDK (the CLI's HTTP client) is a distribution of its own in this repository.
COPY clients/python ./clients/python
RUN pip install ./clients/python . \
    && useradd --create-home --uid 10001 aia \
    && mkdir -p /data \
    && chown aia /data

USER aia
EXPOSE 8000 5555
# Celery and uvicorn handle SIGTERM themselves (warm shutdown, request draining); the
# `aia-engine` commands exec them, so they receive it directly.
CMD ["aia-engine", "serve"]
