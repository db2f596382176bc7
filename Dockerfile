# One image for every tier: the command picks web (make serve), worker
# (make worker) or the release job (make migrate).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOST=0.0.0.0 PORT=8000
RUN apt-get update \
 && apt-get install -y --no-install-recommends make \
    fonts-dejavu-core fonts-noto-ui-core fonts-wqy-microhei fonts-noto-color-emoji fonts-symbola \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 1000 portal
WORKDIR /srv/portal
COPY requirements.txt ./
RUN python -m venv .venv && .venv/bin/pip install --no-cache-dir -r requirements.txt
COPY . .
# Mark the venv current for make, which would otherwise reinstall it.
RUN touch .venv/.runtime && DJANGO_SECRET_KEY=build .venv/bin/python manage.py collectstatic --no-input --verbosity 0 \
 && chown -R portal:portal /srv/portal
USER portal
EXPOSE 8000
# The liveness probe answers by address over plain HTTP, whatever DJANGO_HTTPS and
# DJANGO_ALLOWED_HOSTS say (a page would be a 400 or a redirect there).
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health/live').status != 200)"
CMD ["make", "serve"]
