# Convoke: one image for web (gunicorn), worker and beat (Celery).
FROM python:3.12-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    PATH="/opt/venv/bin:$PATH"

RUN pip install --no-cache-dir uv

WORKDIR /app
COPY pyproject.toml uv.lock .python-version ./
RUN uv sync --frozen --no-dev --no-install-project

COPY . .
RUN DEBUG=true python manage.py collectstatic --noinput

RUN useradd --system --home /app convoke && mkdir -p /app/var/prometheus && chown -R convoke /app/var
USER convoke

EXPOSE 8000
CMD ["gunicorn", "calendars.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3"]
