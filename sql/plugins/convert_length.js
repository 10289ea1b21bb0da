// convert_length(value, from, to): converts a length between units, e.g.
// convert_length(1, 'cff', 'm') = 140. Units: m, km, mi, ft, yd, cff (Canadian football field).
// Kind: scalar.

const METERS = { m: 1, km: 1000, mi: 1609.344, ft: 0.3048, yd: 0.9144, cff: 140 };

function main(value, from, to) {
  if (value === null) return null;
  if (!(from in METERS)) throw new RangeError(`unknown unit ${from}`);
  if (!(to in METERS)) throw new RangeError(`unknown unit ${to}`);
  return (value * METERS[from]) / METERS[to];
}
