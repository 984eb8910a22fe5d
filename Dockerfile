# One image for web, worker and beat (docker-compose.yml). Python 3.11, no build tools at run time.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HEALTHAPP_VAR_DIR=/var/lib/healthapp
WORKDIR /app
COPY pyproject.toml ./
COPY . .
RUN pip install --no-cache-dir . && useradd --system --home /app healthapp \
    && mkdir -p /var/lib/healthapp && chown healthapp /var/lib/healthapp
USER healthapp
EXPOSE 8000
CMD ["gunicorn", "healthapp.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3"]
