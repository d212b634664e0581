"""Integrations with frameworks; each is an optional extra (``pip install dbcrate[django]``)."""
