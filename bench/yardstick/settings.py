"""Settings of the yardstick app: Django's default middleware, DRF with JSON only."""

import os

import environ

SECRET_KEY = os.environ.get("SECRET_KEY", "yardstick-only-secret-key-0123456789abcdef")
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "bench.yardstick.urls"
WSGI_APPLICATION = "bench.yardstick.wsgi.application"
USE_TZ = True
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "rest_framework"]
# Django's default middleware, as the calibration's "(c)" row measured it.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
# Persistent connections, as the exchange's web workers keep them.
DATABASES = {"default": environ.Env().db("YARDSTICK_DATABASE_URL")}
DATABASES["default"].update(CONN_MAX_AGE=60, CONN_HEALTH_CHECKS=True)
REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
}
