"""How an archive's members are laid out: one tar file (the default), a directory, one SQLite
file or a directory of Python-literal modules; the reader (:class:`Archive`), the writers and
``convert`` between kinds."""
