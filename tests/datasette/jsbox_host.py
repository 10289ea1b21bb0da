"""A Datasette plugin that hosts jsbox the way docs/hosts.md says: every connection Datasette
opens loads jsbox, applies Datasette's own `sql_time_limit_ms` as jsbox's time limit (Datasette
stops SQL with a progress handler, which cannot stop a call running inside jsbox), sets a memory
ceiling, turns the database's stored plugins off unless the plugin's configuration turns them
on, and locks the settings, all before any visitor's SQL runs.

Used by tests/hosts.rs (`datasette --plugins-dir tests/datasette ...`); the extension's path
comes from JSBOX_EXT."""

import os

from datasette import hookimpl


@hookimpl
def prepare_connection(conn, database, datasette):
    config = datasette.plugin_config("jsbox-host", database=database) or {}
    conn.enable_load_extension(True)
    conn.load_extension(os.environ["JSBOX_EXT"])
    conn.enable_load_extension(False)
    time_limit_ms = datasette.setting("sql_time_limit_ms")
    memory_limit_mb = int(config.get("memory_limit_mb", 32))
    plugins = 1 if config.get("stored_plugins") else 0
    conn.execute(
        "SELECT js_config('time_limit_ms', ?), js_config('memory_limit_mb', ?), js_config('plugins', ?)",
        (time_limit_ms, memory_limit_mb, plugins),
    ).fetchall()
    conn.execute("SELECT js_config('locked', 1)").fetchall()
