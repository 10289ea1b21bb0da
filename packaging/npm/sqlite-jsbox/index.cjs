// sqlite-jsbox: the jsbox SQLite extension for Node.js (better-sqlite3, node:sqlite, ...).
//
//   const Database = require("better-sqlite3");
//   const jsbox = require("sqlite-jsbox");
//   const db = new Database(":memory:");
//   jsbox.load(db);
//   db.prepare("SELECT js_eval('6 * 7') AS v").get(); // { v: 42 }
//
// The extension itself comes in a package per platform (sqlite-jsbox-linux-x64, ...), an
// optional dependency that npm installs only where its os, cpu and libc match.

"use strict";

const os = require("node:os");
const path = require("node:path");

const version = "@VERSION@";
const ENTRYPOINT = "sqlite3_jsbox_init";
const BUILT = ["linux-x64", "linux-arm64"];

function platformPackage() {
  return `sqlite-jsbox-${os.platform()}-${os.arch()}`;
}

/** The extension's full path, for `db.loadExtension(path)`. */
function getLoadablePath() {
  const name = platformPackage();
  let manifest;
  try {
    manifest = require.resolve(`${name}/package.json`);
  } catch (e) {
    throw new Error(
      `sqlite-jsbox: no extension for ${os.platform()}-${os.arch()}: the package ${name} is not installed ` +
        `(jsbox is built for ${BUILT.join(", ")} with glibc; npm installs the one that matches)`
    );
  }
  const file = { darwin: "jsbox0.dylib", win32: "jsbox0.dll" }[os.platform()] || "jsbox0.so";
  return path.join(path.dirname(manifest), file);
}

/** Loads jsbox into `db`: a better-sqlite3 `Database` or a `node:sqlite` `DatabaseSync`
 * (opened with `allowExtension: true`). */
function load(db) {
  if (typeof db.loadExtension !== "function") {
    throw new Error("sqlite-jsbox: this database object has no loadExtension(path) method");
  }
  if (typeof db.enableLoadExtension === "function") {
    db.enableLoadExtension(true);
  }
  db.loadExtension(getLoadablePath());
}

module.exports = { getLoadablePath, load, version, ENTRYPOINT };
