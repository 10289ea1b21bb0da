// speed_kmh(feature) OVER (PARTITION BY track_fid ORDER BY seq ROWS 1 PRECEDING): the speed
// between a point and the one before it, in km/h, from the features' coordinates and their
// `time` property ("YYYY-MM-DD HH:MM:SS+00"). NULL for a track's first point. Kind: window.

function distanceM(a, b) {
  if (a[0] === b[0] && a[1] === b[1]) return 0; // acos(1 - ε) would make centimeters of nothing
  const rad = Math.PI / 180;
  const cos =
    Math.sin(a[1] * rad) * Math.sin(b[1] * rad) +
    Math.cos(a[1] * rad) * Math.cos(b[1] * rad) * Math.cos((a[0] - b[0]) * rad);
  return Math.acos(Math.min(1, cos)) / rad * 60 * 1853.159;
}

function seconds(feature) {
  return Date.parse(feature.properties.time.replace(" ", "T").replace("+00", "Z")) / 1000;
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
  const dt = seconds(b) - seconds(a);
  if (dt <= 0) return null;
  return (distanceM(a.geometry.coordinates, b.geometry.coordinates) / dt) * 3.6;
}

const final = value;
