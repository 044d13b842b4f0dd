# leadcrm image: one image for web (gunicorn), Celery worker and beat; see docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system app \
 && useradd --system --gid app --home-dir /app --no-create-home --shell /usr/sbin/nologin app

WORKDIR /app
COPY . .

# Code and collected static files stay owned by root (read-only for the app user); only media is writable.
RUN pip install . \
 && rm -rf build ./*.egg-info \
 && DJANGO_SECRET_KEY=build DJANGO_ALLOWED_HOSTS=x DJANGO_ENV=production \
    python manage.py collectstatic --noinput \
 && mkdir -p /app/media \
 && chown app:app /app/media

USER app
EXPOSE 8000
CMD ["gunicorn", "leadcrm.wsgi:application", "-b", "0.0.0.0:8000", "-w", "2", "--access-logfile", "-"]
