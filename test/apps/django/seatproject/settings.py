"""Settings of the test Django app. The database comes from APP_DATABASE_URL."""
import os
import sys
from urllib.parse import unquote, urlsplit


def database_from_url(url):
    parts = urlsplit(url)
    if parts.scheme == 'sqlite':
        # sqlite:///absolute/path.db -> /absolute/path.db
        if parts.netloc or not parts.path.startswith('/'):
            raise ValueError(f'APP_DATABASE_URL must be sqlite:///absolute/path.db, got {url}')
        return {'ENGINE': 'django.db.backends.sqlite3', 'NAME': unquote(parts.path)}
    if parts.scheme in ('postgres', 'postgresql'):
        return {
            'ENGINE': 'django.db.backends.postgresql',
            'NAME': unquote(parts.path.lstrip('/')),
            'USER': unquote(parts.username or ''),
            'PASSWORD': unquote(parts.password or ''),
            'HOST': parts.hostname or '',
            'PORT': str(parts.port or ''),
        }
    raise ValueError(f'APP_DATABASE_URL has an unsupported scheme {parts.scheme!r}: expected sqlite:// or postgres://')


_url = os.environ.get('APP_DATABASE_URL')
if not _url:
    sys.exit('APP_DATABASE_URL is not set: expected sqlite:///absolute/path.db or postgres://user:password@host:port/dbname')

try:
    DATABASES = {'default': database_from_url(_url)}
except ValueError as error:
    sys.exit(str(error))

SECRET_KEY = 'seatctl-test-app-not-secret'
DEBUG = False
ALLOWED_HOSTS = []
INSTALLED_APPS = [
    'django.contrib.contenttypes',
    'django.contrib.auth',
    'reservations',
]
MIDDLEWARE = []
ROOT_URLCONF = 'seatproject.urls'
USE_TZ = True
TIME_ZONE = 'Europe/Paris'
DEFAULT_AUTO_FIELD = 'django.db.models.AutoField'
