/** A database that can load a SQLite extension: better-sqlite3's `Database`, `node:sqlite`'s
 * `DatabaseSync` (opened with `allowExtension: true`), and others with the same method. */
export interface LoadsExtensions {
  loadExtension(path: string, entryPoint?: string): unknown;
  enableLoadExtension?(allow: boolean): unknown;
}

/** The full path of the jsbox extension for this platform. Throws where none is installed. */
export function getLoadablePath(): string;

/** Loads jsbox into `db`: `js_eval`, `js_config`, `js_plugins_init`, ... become SQL functions. */
export function load(db: LoadsExtensions): void;

/** The package's version, equal to `SELECT js_version()`. */
export const version: string;

/** The extension's entry point, `sqlite3_jsbox_init`. */
export const ENTRYPOINT: string;

declare const jsbox: {
  getLoadablePath: typeof getLoadablePath;
  load: typeof load;
  version: typeof version;
  ENTRYPOINT: typeof ENTRYPOINT;
};
export default jsbox;
