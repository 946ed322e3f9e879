# Image for the worker and the web console/API (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY pyproject.toml constraints.txt README.md ./
COPY domain ./domain
COPY store ./store
COPY activities ./activities
COPY workflows ./workflows
COPY app ./app
COPY api ./api
COPY templates ./templates
COPY policies ./policies
COPY config ./config
COPY samples ./samples
COPY worker.py starter.py ./
RUN pip install -c constraints.txt . && useradd --system --home /app collections && chown -R collections /app

USER collections
CMD ["python", "worker.py"]
