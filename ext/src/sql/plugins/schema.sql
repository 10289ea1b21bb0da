-- The table jsbox reads stored plugins from (created by js_plugins_init()). Each row becomes a
-- SQL function named `name` on every connection that loads jsbox.
CREATE TABLE IF NOT EXISTS main.js_plugins (
  -- The SQL function's name: an identifier of at most 255 bytes (SQLite's limit) that is not
  -- a built-in SQL function, an operator's function (regexp, match, glob, like) nor js_*.
  -- NOCASE: SQLite ignores case in function names, so Foo and foo would be one function.
  name          TEXT PRIMARY KEY NOT NULL COLLATE NOCASE
                CHECK (name GLOB '[A-Za-z_]*' AND name NOT GLOB '*[^A-Za-z0-9_]*'
                       AND length(name) <= 255
                       AND lower(name) NOT IN ('regexp', 'match', 'glob', 'like')
                       AND lower(name) NOT GLOB 'js_*'),
  -- scalar: main(...args) | aggregate: init(), step(state, ...args), final(state)
  -- | window: as aggregate plus inverse(state, ...args), and optionally value(state).
  kind          TEXT NOT NULL CHECK (kind IN ('scalar', 'aggregate', 'window')),
  -- JavaScript source defining those functions.
  source        TEXT NOT NULL,
  -- Number of SQL arguments; -1 (the default) accepts any number.
  n_args        INTEGER NOT NULL DEFAULT -1 CHECK (n_args BETWEEN -1 AND 127),
  -- Reserved for jsbox's deterministic mode (fuel limits, seeded Math.random, frozen clock):
  -- only then will a plugin flagged 1 be registered as SQLITE_DETERMINISTIC.
  deterministic INTEGER NOT NULL DEFAULT 0 CHECK (deterministic IN (0, 1)),
  description   TEXT,
  updated_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TRIGGER IF NOT EXISTS main.js_plugins_touch AFTER UPDATE OF kind, source, n_args ON main.js_plugins
BEGIN
  UPDATE js_plugins SET updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE name = NEW.name;
END;

-- The ES modules plugins and js_eval scripts import (created by js_plugins_init()): `import * as
-- turf from 'turf'` finds the row named turf. Nothing else can be imported.
CREATE TABLE IF NOT EXISTS main.js_modules (
  -- What `import` names: at most 255 bytes, not starting with '.' or '/' (an import of './x'
  -- from module 'geo/a' finds 'geo/x'). Case matters, as in JavaScript.
  name          TEXT PRIMARY KEY NOT NULL
                CHECK (length(CAST(name AS BLOB)) BETWEEN 1 AND 255 AND name NOT GLOB '[./]*'),
  -- module: an ES module (import, export) | commonjs: a CommonJS or UMD bundle (turf.min.js as
  -- published), whose module.exports is the default export and whose keys are named exports.
  kind          TEXT NOT NULL DEFAULT 'module' CHECK (kind IN ('module', 'commonjs')),
  source        TEXT NOT NULL,
  description   TEXT,
  updated_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TRIGGER IF NOT EXISTS main.js_modules_touch AFTER UPDATE OF kind, source ON main.js_modules
BEGIN
  UPDATE js_modules SET updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE name = NEW.name;
END;
