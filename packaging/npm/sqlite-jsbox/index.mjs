// sqlite-jsbox as an ES module; see index.cjs.
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const jsbox = require("./index.cjs");

export const { getLoadablePath, load, version, ENTRYPOINT } = jsbox;
export default jsbox;
