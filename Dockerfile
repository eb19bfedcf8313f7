FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

COPY . .
RUN DEBUG=1 python manage.py collectstatic --noinput

# var/mailbox exists in the image so that the compose volume mounted there starts out owned by
# the app's user (a fresh named volume copies the ownership of the directory it covers).
RUN useradd --create-home exchange && mkdir -p /app/var/mailbox && chown -R exchange /app/var
USER exchange

EXPOSE 8000 8001
CMD ["gunicorn", "exchange_site.wsgi", "--config", "gunicorn.conf.py"]
