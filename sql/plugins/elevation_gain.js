// elevation_gain(ele): total climb of a track in meters, the sum of the rises between
// consecutive elevations (rows in order; NULL elevations are skipped). Kind: aggregate.

function init() {
  return { last: null, gain: 0 };
}

function step(state, ele) {
  if (ele === null) return state;
  if (state.last !== null && ele > state.last) state.gain += ele - state.last;
  state.last = ele;
  return state;
}

function final(state) {
  return state.gain;
}
