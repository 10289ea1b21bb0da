// track_cff(feature): the length of a GPS track in Canadian football fields (140 m), over GeoJSON
// Point features given in order; the seed post's formula. Kind: window, so it serves both
//   SELECT track_fid, track_cff(feature) FROM (... ORDER BY track_fid, seq) GROUP BY track_fid
//   SELECT seq, track_cff(feature) OVER (PARTITION BY track_fid ORDER BY seq) FROM track_points
// (a running length); inverse() lets sliding frames drop their oldest point.

function distance(lat0, lon0, lat1, lon1) {
  if (lat0 == lat1 && lon0 == lon1) {
    return 0;
  }
  const radlat0 = (Math.PI * lat0) / 180;
  const radlat1 = (Math.PI * lat1) / 180;
  const radtheta = (Math.PI * (lon0 - lon1)) / 180;
  let dist =
    Math.sin(radlat0) * Math.sin(radlat1) +
    Math.cos(radlat0) * Math.cos(radlat1) * Math.cos(radtheta);
  if (dist > 1) {
    dist = 1;
  }
  return ((Math.acos(dist) * 180) / Math.PI) * 60 * 1853.159;
}

const FIELD_M = 140;

function legFields(a, b) {
  return distance(b[1], b[0], a[1], a[0]) / FIELD_M;
}

// state: the points in the frame (oldest first) and the length of the legs between them.
function init() {
  return { points: [], fields: 0 };
}

// The feature's [lon, lat]; null for a NULL row or a feature without coordinates, which are
// skipped as SQL aggregates skip NULLs.
function pointOf(feature) {
  const c = feature?.geometry?.coordinates;
  return Array.isArray(c) && typeof c[0] === "number" && typeof c[1] === "number" ? c : null;
}

function step(state, feature) {
  const point = pointOf(feature);
  if (point === null) return state;
  const last = state.points[state.points.length - 1];
  if (last !== undefined) state.fields += legFields(last, point);
  state.points.push(point);
  return state;
}

function inverse(state, feature) {
  if (pointOf(feature) === null) return state; // skipped by step too
  const first = state.points.shift();
  if (state.points.length > 0) state.fields -= legFields(first, state.points[0]);
  else state.fields = 0;
  return state;
}

function final(state) {
  return state.fields;
}
