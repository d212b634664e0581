"""The Django application config of dbcrate's management commands."""

from __future__ import annotations

from django.apps import AppConfig


class DbcrateConfig(AppConfig):
    name = "dbcrate.contrib.django"
    label = "dbcrate"
    verbose_name = "dbcrate"
