# Convoke: one image for web (gunicorn), worker and beat (Celery).
# BASE_IMAGE: an image with Python 3.12 or 3.13 and pip, `python` on the PATH. The default is
# the official image; `make stack-check` builds a stand-in from Debian (no registry needed).
ARG BASE_IMAGE=python:3.12-slim-bookworm
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_PYTHON_DOWNLOADS=never \
    PATH="/opt/venv/bin:$PATH"

RUN pip install --no-cache-dir uv==0.13.9

WORKDIR /app
COPY pyproject.toml uv.lock .python-version ./
# The image's own Python (3.12 in the official image), whatever .python-version asks.
RUN uv sync --frozen --no-dev --no-install-project --no-cache --python python3

COPY . .
RUN DEBUG=true python manage.py collectstatic --noinput

RUN useradd --system --home /app convoke && mkdir -p /app/var/prometheus && chown -R convoke /app/var
USER convoke

EXPOSE 8000
CMD ["gunicorn", "calendars.wsgi:application", "--bind", "0.0.0.0:8000"]
