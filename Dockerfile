# One image for every process of docker-compose.yml: the worker (python -m workers), the HTTP service
# (uvicorn service.app:create_app --factory), the migration job (alembic upgrade head), the search-attribute
# job (python -m runtime.setup_temporal), the carrier simulator (python -m carrier) and the CLI (starter.py).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

# The dependencies first, in a layer of their own: exactly the lock's versions, each file checked against
# the lock's SHA-256 hashes (a tampered or substituted package fails the build). ./collect lock renews it.
COPY pyproject.toml README.md requirements.lock ./
RUN pip install --require-hashes -r requirements.lock

# Then the project itself (what .dockerignore leaves: no .venv, var/, .git, caches or .env).
COPY . .
RUN pip install --no-deps -e . \
    && useradd --create-home --uid 10001 collect \
    && mkdir -p var \
    && chown collect var

# Never root at run time; var/ is the only place the default (SQLite) settings write to.
USER collect
EXPOSE 8000 9464
CMD ["python", "-m", "workers"]
