"""sqlite-utils-sqlite-jsbox: jsbox in every connection sqlite-utils opens.

    pip install sqlite-utils-sqlite-jsbox   # or: sqlite-utils install sqlite-utils-sqlite-jsbox
    sqlite-utils memory "select js_eval('6 * 7')"

and from Python, `sqlite_utils.Database(memory=True)` has the functions too (plugins are
applied to every Database unless it is opened with `execute_plugins=False`)."""

import sqlite_jsbox
import sqlite_utils


@sqlite_utils.hookimpl
def prepare_connection(conn):
    sqlite_jsbox.load(conn)
