# Image for the worker and the web console/API (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
# PDF letters (WeasyPrint): Pango and fonts, CJK included
RUN apt-get update && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 \
    fonts-wqy-zenhei fonts-dejavu-core && rm -rf /var/lib/apt/lists/*

COPY pyproject.toml constraints.txt README.md ./
COPY domain ./domain
COPY store ./store
COPY activities ./activities
COPY workflows ./workflows
COPY app ./app
COPY api ./api
COPY templates ./templates
COPY translations ./translations
COPY policies ./policies
COPY config ./config
COPY samples ./samples
COPY worker.py starter.py ./
RUN pip install -c constraints.txt . && pybabel compile --domain messages --directory translations \
    && useradd --system --home /app collections && chown -R collections /app

USER collections
CMD ["python", "worker.py"]
