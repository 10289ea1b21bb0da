// speed_kmh(feature) OVER (PARTITION BY track_fid ORDER BY seq ROWS 1 PRECEDING): the speed
// between a point and the one before it, in km/h, from the features' coordinates and their
// `time` property ("YYYY-MM-DD HH:MM:SS+00"). NULL for a track's first point, and where either
// point is missing, has no coordinates or no (valid) time, as SQL arithmetic on NULL gives NULL:
// real GPX files often have points without a time. Kind: window.

function distanceM(a, b) {
  if (a[0] === b[0] && a[1] === b[1]) return 0; // acos(1 - ε) would make centimeters of nothing
  const rad = Math.PI / 180;
  const cos =
    Math.sin(a[1] * rad) * Math.sin(b[1] * rad) +
    Math.cos(a[1] * rad) * Math.cos(b[1] * rad) * Math.cos((a[0] - b[0]) * rad);
  return Math.acos(Math.min(1, cos)) / rad * 60 * 1853.159;
}

// The point's time in seconds, or null where it has none (or one Date cannot read).
function seconds(feature) {
  const time = feature?.properties?.time;
  if (typeof time !== "string") return null;
  const ms = Date.parse(time.replace(" ", "T").replace("+00", "Z"));
  return Number.isNaN(ms) ? null : ms / 1000;
}

// The point's [lon, lat], or null where it has none.
function coordinates(feature) {
  const c = feature?.geometry?.coordinates;
  return Array.isArray(c) && typeof c[0] === "number" && typeof c[1] === "number" ? c : null;
}

// state: the features in the window frame, oldest first.
function init() {
  return [];
}

function step(frame, feature) {
  frame.push(feature);
  return frame;
}

function inverse(frame, feature) {
  frame.shift();
  return frame;
}

function value(frame) {
  if (frame.length < 2) return null;
  const a = frame[0], b = frame[frame.length - 1];
  const [ta, tb, ca, cb] = [seconds(a), seconds(b), coordinates(a), coordinates(b)];
  if (ta === null || tb === null || ca === null || cb === null) return null;
  const dt = tb - ta;
  if (dt <= 0) return null;
  return (distanceM(ca, cb) / dt) * 3.6;
}

const final = value;
