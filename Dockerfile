# One image for the worker, the starter and (later) the HTTP service.
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY pyproject.toml README.md ./
COPY domain domain
COPY workflows workflows
COPY activities activities
COPY workers workers
COPY runtime runtime
COPY store store
COPY carrier carrier
COPY policies policies
COPY data data
COPY alembic.ini starter.py ./
RUN pip install --no-cache-dir .
CMD ["python", "-m", "workers"]
