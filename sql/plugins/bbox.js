// bbox(lon, lat): the bounding box of a group's points as a GeoJSON Polygon (an object, so
// the SQL result is JSON text that json_extract reads); NULL for a group with no point.
// Kind: aggregate.

function init() {
  return null;
}

function step(box, lon, lat) {
  if (lon === null || lat === null) return box;
  if (box === null) return { w: lon, s: lat, e: lon, n: lat };
  return {
    w: Math.min(box.w, lon),
    s: Math.min(box.s, lat),
    e: Math.max(box.e, lon),
    n: Math.max(box.n, lat),
  };
}

function final(box) {
  if (box === null) return null;
  const { w, s, e, n } = box;
  return {
    type: "Polygon",
    coordinates: [[[w, s], [e, s], [e, n], [w, n], [w, s]]],
  };
}
