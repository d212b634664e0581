"""dbcrate for Django: add ``"dbcrate.contrib.django"`` to ``INSTALLED_APPS`` and get
``manage.py dbcrate_dump``, ``dbcrate_restore`` and ``dbcrate_ls``.

The database comes from ``DATABASES`` (``--database``), the default storage is ``MEDIA_ROOT``,
tables are chosen by application labels and models (``--app blog``, ``--exclude-model
auth.Permission``) or by named definitions in ``settings.DBCRATE["applications"]`` (one of them
may be a *drain*: every model no other definition claims), and ``FileField``/``ImageField``
columns are checked against the media files. ``dbcrate_restore`` puts the media storage into
``MEDIA_ROOT`` whatever its name (:mod:`.storages`); ``settings.DBCRATE`` is checked before
anything runs (:mod:`.validation`). See docs/STORAGES.md, "Django".
"""
