"""Settings of the test project. The database and media root come from the environment:
TEST_DB is ``sqlite:PATH`` or ``postgresql:NAME`` (127.0.0.1, user postgres, trust auth);
TEST_MEDIA_ROOT is the media directory; TEST_DEFINITIONS=1 adds named table definitions;
TEST_DBCRATE is a JSON object merged into DBCRATE (storages, definitions, bad settings)."""

import json
import os

SECRET_KEY = "only-for-tests"
DEBUG = False
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "blog",
    "dbcrate.contrib.django",
]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

kind, _, name = os.environ["TEST_DB"].partition(":")
if kind == "sqlite":
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": name}}
else:
    DATABASES = {"default": {"ENGINE": "django.db.backends.postgresql", "NAME": name,
                             "USER": "postgres", "PASSWORD": os.environ.get("TEST_DB_PASSWORD", ""),
                             "HOST": "127.0.0.1", "PORT": "5432"}}
MEDIA_ROOT = os.environ["TEST_MEDIA_ROOT"]

DBCRATE = {"storage_exclude": ["*.tmp"]}
if os.environ.get("TEST_DEFINITIONS") == "1":
    DBCRATE["applications"] = [
        {"name": "content", "models": ["blog", "auth.User"]},
        {"name": "rest", "drain": True, "exclude_models": ["sessions.Session"]},
    ]
if os.environ.get("TEST_DBCRATE"):
    DBCRATE.update(json.loads(os.environ["TEST_DBCRATE"]))
