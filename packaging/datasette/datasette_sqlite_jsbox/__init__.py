"""datasette-sqlite-jsbox: jsbox in Datasette, hosted the way docs/hosts.md says.

Every connection Datasette opens loads jsbox and, before any visitor's SQL runs:
- applies Datasette's own `sql_time_limit_ms` as jsbox's time limit (Datasette stops SQL with a
  progress handler, which cannot stop a call running inside jsbox);
- sets a memory ceiling (`memory_limit_mb` in the plugin's configuration, 32 by default);
- turns the database's stored plugins off unless the configuration says `"stored_plugins": true`;
- locks the settings: a visitor may tighten them, never loosen them.

Configuration (metadata.json or datasette.yaml):

    {"plugins": {"datasette-sqlite-jsbox": {"memory_limit_mb": 64, "stored_plugins": true}}}

The extension comes from the `sqlite-jsbox` package, or from the path in `JSBOX_EXT` when that is
set (a build of one's own; jsbox's tests use it)."""

import os

from datasette import hookimpl

NAME = "datasette-sqlite-jsbox"
DEFAULT_MEMORY_LIMIT_MB = 32


def extension_path():
    """The extension to load: `JSBOX_EXT`, else the one the `sqlite-jsbox` package carries."""
    if os.environ.get("JSBOX_EXT"):
        return os.environ["JSBOX_EXT"]
    import sqlite_jsbox

    return sqlite_jsbox.loadable_path()


@hookimpl
def prepare_connection(conn, database, datasette):
    config = datasette.plugin_config(NAME, database=database) or {}
    conn.enable_load_extension(True)
    conn.load_extension(extension_path())
    conn.enable_load_extension(False)
    time_limit_ms = datasette.setting("sql_time_limit_ms")
    memory_limit_mb = int(config.get("memory_limit_mb", DEFAULT_MEMORY_LIMIT_MB))
    plugins = 1 if config.get("stored_plugins") else 0
    conn.execute(
        "SELECT js_config('time_limit_ms', ?), js_config('memory_limit_mb', ?), js_config('plugins', ?)",
        (time_limit_ms, memory_limit_mb, plugins),
    ).fetchall()
    conn.execute("SELECT js_config('locked', 1)").fetchall()
