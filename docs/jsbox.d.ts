// TypeScript declarations of jsbox's plugin contract (docs/plugins.md). Write a plugin as an ES
// module against them, check it with `tsc --noEmit`, compile it to JavaScript and store that in
// js_plugins.source.
//
//   import type { AggregatePlugin, SqlArg } from './jsbox';
//   type State = number[][];
//   export const { init, step, final }: AggregatePlugin<State, [number | null, number | null]> = {
//     init: () => [],
//     step: (points, lon, lat) => (lon !== null && lat !== null && points.push([lon, lat]), points),
//     final: (points) => points.length,
//   };

/** A SQL argument as a plugin receives it. */
export type SqlArg =
  | number // INTEGER, REAL
  | bigint // INTEGER beyond ±2^53
  | string // TEXT
  | null // NULL
  | Uint8Array // BLOB
  | JsonValue; // TEXT holding a JSON object or array, parsed

/** A JSON object or array (TEXT arguments whose first non-blank character is `{` or `[`). */
export type JsonValue = { [key: string]: JsonValue | number | string | boolean | null } | Array<JsonValue | number | string | boolean | null>;

/** What a plugin may return: the SQL value it becomes. Objects and arrays become JSON text;
 *  booleans 1 or 0; `undefined` NULL; a promise is awaited. */
export type SqlResult = number | bigint | string | boolean | null | undefined | Uint8Array | object | Promise<SqlResult>;

/** `kind = 'scalar'`: one world per connection, kept across calls. */
export interface ScalarPlugin<Args extends SqlArg[] = SqlArg[]> {
  main(...args: Args): SqlResult;
}

/** `kind = 'aggregate'`: every group starts from the world as loaded. */
export interface AggregatePlugin<State, Args extends SqlArg[] = SqlArg[]> {
  init(): State;
  step(state: State, ...args: Args): State;
  final(state: State): SqlResult;
}

/** `kind = 'window'`: an aggregate that can also take a row out of its frame. */
export interface WindowPlugin<State, Args extends SqlArg[] = SqlArg[]> extends AggregatePlugin<State, Args> {
  inverse(state: State, ...args: Args): State;
  /** The frame's current result; must not consume the state (default: `final`). */
  value?(state: State): SqlResult;
}

/** The sandbox's console: lines go to a bounded buffer (`js_debug() ->> '$.last_console'`). */
export interface SandboxConsole {
  log(...values: unknown[]): void;
  info(...values: unknown[]): void;
  warn(...values: unknown[]): void;
  error(...values: unknown[]): void;
  debug(...values: unknown[]): void;
  trace(...values: unknown[]): void;
}

declare global {
  /** `js_eval`'s input (its second argument, parsed). */
  const data: SqlArg | JsonValue | boolean;
  const console: SandboxConsole;
}
