"""jsbox for Python: JavaScript plugins for SQLite, run in a WebAssembly sandbox.

    import sqlite3
    import sqlite_jsbox

    db = sqlite3.connect(":memory:")
    sqlite_jsbox.load(db)
    db.execute("SELECT js_eval('data.a + 1', '{\\"a\\": 41}')").fetchone()  # (42,)

The package carries the loadable extension itself (`jsbox0.so`); `load()` loads it into a
connection of Python's `sqlite3`, of sqlean.py, pysqlite3 or APSW."""

import os

__version__ = "@VERSION@"

#: The extension's entry point (SQLite also finds it from the file's name).
ENTRYPOINT = "sqlite3_jsbox_init"

#: Ways to get a SQLite module that can load extensions, for Pythons whose `sqlite3` cannot.
ALTERNATIVES = (
    "sqlean.py (pip install sqlean.py; import sqlean as sqlite3), "
    "pysqlite3-binary (pip install pysqlite3-binary; from pysqlite3 import dbapi2 as sqlite3) "
    "or apsw (pip install apsw; apsw.Connection(...))"
)


def loadable_path():
    """The extension's path without its suffix, as `load_extension` and `.load` take it."""
    return os.path.normpath(os.path.join(os.path.dirname(__file__), "jsbox0"))


def load(conn):
    """Loads jsbox into `conn`: a connection of `sqlite3`, `sqlean`, `pysqlite3` or `apsw`.

    Raises RuntimeError naming the alternatives where this Python's SQLite module was built
    without extension loading (pyenv's and macOS's system Pythons are)."""
    if not hasattr(conn, "enable_load_extension"):
        raise RuntimeError(
            "sqlite_jsbox.load: this SQLite module cannot load extensions "
            f"({type(conn).__module__}.{type(conn).__name__} has no enable_load_extension: its "
            f"Python was built without it); use {ALTERNATIVES}, and pass that connection to "
            "sqlite_jsbox.load()"
        )
    conn.enable_load_extension(True)
    try:
        conn.load_extension(loadable_path())
    finally:
        conn.enable_load_extension(False)
