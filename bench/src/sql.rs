//! The benchmark's SQL: data generation, the JavaScript each engine runs, and the workloads in
//! the three forms (jsbox, sqlite-js, plain SQL) that compute the same thing.

use std::fmt::Write;
use std::path::Path;

pub use jsbox_testkit::repo_root as repo;

/// Lines starting with this name the statement whose `.timer` line follows.
pub const TAG: &str = "@@";

/// One workload: the same computation for each engine; `per` divides a statement's time.
pub struct Workload {
    pub id: &'static str,
    pub title: &'static str,
    pub unit: &'static str,
    pub goal: &'static str,
    pub per: u64,
    /// SQL run once, after the common setup and before any round (the growth inputs).
    pub setup: String,
    pub jsbox: String,
    pub sqlite_js: Option<String>,
    pub plain: Option<String>,
}

/// The seed post's distance in meters, for every engine's JavaScript.
const DISTANCE_JS: &str = "function distance(lat0, lon0, lat1, lon1) {
  if (lat0 == lat1 && lon0 == lon1) return 0;
  const radlat0 = (Math.PI * lat0) / 180, radlat1 = (Math.PI * lat1) / 180;
  const radtheta = (Math.PI * (lon0 - lon1)) / 180;
  let dist = Math.sin(radlat0) * Math.sin(radlat1) + Math.cos(radlat0) * Math.cos(radlat1) * Math.cos(radtheta);
  if (dist > 1) dist = 1;
  return ((Math.acos(dist) * 180) / Math.PI) * 60 * 1853.159;
}";

/// The same distance in SQL, between (lat, lon) and the previous point (plat, plon).
const DISTANCE_SQL: &str = "CASE WHEN plat IS NULL OR (lat = plat AND lon = plon) THEN 0 ELSE \
  degrees(acos(min(1.0, sin(radians(lat)) * sin(radians(plat)) + cos(radians(lat)) * cos(radians(plat)) * cos(radians(lon - plon))))) \
  * 60 * 1853.159 END";

/// Turf's distance in meters (haversine on a sphere of 6371008.8 m), for W10's plain SQL.
const HAVERSINE_SQL: &str = "CASE WHEN plat IS NULL THEN 0 ELSE 2 * 6371008.8 * asin(min(1.0, sqrt( \
  power(sin(radians(lat - plat) / 2), 2) + cos(radians(plat)) * cos(radians(lat)) * power(sin(radians(lon - plon) / 2), 2)))) END";

/// W10c/d: the first two points of each track (1,000 points each), each its own group (the
/// plugin `PLUGIN` over `lat, lon`).
const ONE_POINT_GROUPS: &str = "SELECT count(*), total(l) FROM (SELECT PLUGIN(lat, lon) AS l FROM track_points \
  WHERE seq <= 2 GROUP BY track_fid, seq);";

/// Each point with the previous one of its track.
const LEGS_SQL: &str = "SELECT track_fid, seq, lat, lon, lag(lat) OVER w AS plat, lag(lon) OVER w AS plon \
  FROM track_points WINDOW w AS (PARTITION BY track_fid ORDER BY seq)";

/// The same, from the GeoJSON feature TEXT.
const LEGS_FEATURE_SQL: &str = "SELECT track_fid, seq, lat, lon, lag(lat) OVER w AS plat, lag(lon) OVER w AS plon \
  FROM (SELECT track_fid, seq, json_extract(feature, '$.geometry.coordinates[1]') AS lat, \
        json_extract(feature, '$.geometry.coordinates[0]') AS lon FROM track_points) \
  WINDOW w AS (PARTITION BY track_fid ORDER BY seq)";

/// SQL that creates `track_points` with `rows` points, 1000 per track, deterministically.
pub fn generate(rows: u64) -> String {
    format!(
        "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;
CREATE TABLE track_points (track_fid INTEGER NOT NULL, seq INTEGER NOT NULL, lon REAL NOT NULL, lat REAL NOT NULL,
  ele REAL, feature TEXT NOT NULL, PRIMARY KEY (track_fid, seq));
INSERT INTO track_points
SELECT f, s, lon, lat, ele, json_object('type', 'Feature',
  'properties', json_object('track_fid', f, 'track_seg_id', 0, 'track_seg_point_id', s, 'ele', ele,
                            'time', strftime('%Y-%m-%d %H:%M:%S+00', 1674345600 + f * 86400 + s * 3, 'unixepoch')),
  'geometry', json_object('type', 'Point', 'coordinates', json_array(lon, lat)))
FROM (SELECT f, s,
        round(151.2 + (f % 40) * 0.01 + s * 0.00009 * cos(f) + 0.00004 * sin(s * 0.7 + f), 5) AS lon,
        round(-33.9 + (f / 40) * 0.01 + s * 0.00009 * sin(f) + 0.00004 * cos(s * 0.9 + f), 5) AS lat,
        round(50 + 20 * sin(s * 0.01 + f), 1) AS ele
      FROM (SELECT value / 1000 AS f, value % 1000 + 1 AS s FROM generate_series(0, {last})));
ANALYZE;",
        last = rows - 1
    )
}

/// The workloads that run inside one shell session (W1–W4, W6, W9).
pub fn workloads(rows: u64, with_sqlite_js: bool) -> Vec<Workload> {
    let calls = if rows <= 10_000 { 20 } else { 100 };
    let fresh = if rows <= 10_000 { 500 } else { 2000 };
    // W10c/d: two groups per track of 1,000 points.
    let one_point_groups = 2 * rows.div_ceil(1000);
    let sjs = |sql: String| with_sqlite_js.then_some(sql);
    let per_track = |f: &str| {
        format!("SELECT count(*), total(l) FROM (SELECT {f} AS l FROM (SELECT * FROM track_points ORDER BY track_fid, seq) GROUP BY track_fid);")
    };
    let mut all = vec![
        Workload {
            id: "W1",
            title: "seed script on the seed fixture",
            unit: "per call",
            goal: "≤ 0.5× plain SQL",
            per: calls,
            setup: String::new(),
            jsbox: seed_jsbox("fixture", calls),
            sqlite_js: sjs(seed_sqlite_js("fixture", calls)),
            plain: Some(seed_plain("fixture", calls)),
        },
        Workload {
            id: "W2a",
            title: "aggregate: track length from lat, lon",
            unit: "per query",
            goal: "≤ 0.8× sqlite-js",
            per: 1,
            setup: String::new(),
            jsbox: per_track("bench_len(lat, lon)"),
            sqlite_js: sjs(per_track("sjs_len(lat, lon)")),
            plain: Some(format!("SELECT count(*), total(l) FROM (SELECT total({DISTANCE_SQL}) AS l FROM ({LEGS_SQL}) GROUP BY track_fid);")),
        },
        Workload {
            id: "W2b",
            title: "aggregate: track length from GeoJSON TEXT",
            unit: "per query",
            goal: "≤ 0.8× sqlite-js, ≤ 1.0× plain",
            per: 1,
            setup: String::new(),
            jsbox: track_lengths_from_features("jsbox", None),
            sqlite_js: sjs(track_lengths_from_features("sqlite-js", None)),
            plain: Some(track_lengths_from_features("plain", None)),
        },
        Workload {
            id: "W3",
            title: "window: running length per point",
            unit: "per query",
            goal: "≤ 0.9× sqlite-js",
            per: 1,
            setup: String::new(),
            jsbox: "SELECT total(r) FROM (SELECT bench_run(lat, lon) OVER (PARTITION BY track_fid ORDER BY seq) AS r FROM track_points);".into(),
            sqlite_js: sjs("SELECT total(r) FROM (SELECT sjs_run(lat, lon) OVER (PARTITION BY track_fid ORDER BY seq) AS r FROM track_points);".into()),
            plain: Some(format!(
                "SELECT total(r) FROM (SELECT total(d) OVER (PARTITION BY track_fid ORDER BY seq) AS r FROM (SELECT track_fid, seq, {DISTANCE_SQL} AS d FROM ({LEGS_SQL})));"
            )),
        },
        Workload {
            id: "W14a",
            title: "W2a, deterministic plugin",
            unit: "per query",
            goal: "≤ 1.15× W2a",
            per: 1,
            setup: String::new(),
            jsbox: per_track("bench_len_det(lat, lon)"),
            sqlite_js: None,
            plain: Some(format!("SELECT count(*), total(l) FROM (SELECT total({DISTANCE_SQL}) AS l FROM ({LEGS_SQL}) GROUP BY track_fid);")),
        },
        Workload {
            id: "W14b",
            title: "W3, deterministic plugin",
            unit: "per query",
            goal: "≤ 1.15× W3",
            per: 1,
            setup: String::new(),
            jsbox: "SELECT total(r) FROM (SELECT bench_run_det(lat, lon) OVER (PARTITION BY track_fid ORDER BY seq) AS r FROM track_points);".into(),
            sqlite_js: None,
            plain: Some(format!(
                "SELECT total(r) FROM (SELECT total(d) OVER (PARTITION BY track_fid ORDER BY seq) AS r FROM (SELECT track_fid, seq, {DISTANCE_SQL} AS d FROM ({LEGS_SQL})));"
            )),
        },
        Workload {
            id: "W10a",
            title: "aggregate: track length by turf.js (a 547 KB module)",
            unit: "per query",
            goal: "≤ 1.5× W2a (hand-written)",
            per: 1,
            setup: turf_setup(),
            jsbox: per_track("bench_turf_len(lat, lon)"),
            sqlite_js: None,
            plain: Some(format!("SELECT count(*), total(l) FROM (SELECT total({HAVERSINE_SQL}) AS l FROM ({LEGS_SQL}) GROUP BY track_fid);")),
        },
        Workload {
            id: "W10b",
            title: "window: running length by turf.js",
            unit: "per query",
            goal: "≤ 1.5× W3 (hand-written)",
            per: 1,
            setup: turf_setup(),
            jsbox: "SELECT total(r) FROM (SELECT bench_turf_run(lat, lon) OVER (PARTITION BY track_fid ORDER BY seq) AS r FROM track_points);".into(),
            sqlite_js: None,
            plain: Some(format!(
                "SELECT total(r) FROM (SELECT total(d) OVER (PARTITION BY track_fid ORDER BY seq) AS r FROM (SELECT track_fid, seq, {HAVERSINE_SQL} AS d FROM ({LEGS_SQL})));"
            )),
        },
        Workload {
            id: "W10c",
            title: "one-point groups by turf.js (2 per track): a group's start",
            unit: "per group",
            goal: "≤ 100 µs",
            per: one_point_groups,
            setup: turf_setup(),
            jsbox: ONE_POINT_GROUPS.replace("PLUGIN", "bench_turf_len"),
            sqlite_js: None,
            plain: Some(ONE_POINT_GROUPS.replace("PLUGIN(lat, lon)", "0")),
        },
        Workload {
            id: "W10d",
            title: "one-point groups, hand-written (W2a's plugin)",
            unit: "per group",
            goal: "—",
            per: one_point_groups,
            setup: String::new(),
            jsbox: ONE_POINT_GROUPS.replace("PLUGIN", "bench_len"),
            sqlite_js: None,
            plain: Some(ONE_POINT_GROUPS.replace("PLUGIN(lat, lon)", "0")),
        },
        Workload {
            id: "W4",
            title: "scalar f(lat) = lat*2+1, sum()",
            unit: "per query",
            goal: "≤ 1.2× sqlite-js",
            per: 1,
            setup: String::new(),
            jsbox: "SELECT total(bench_affine(lat)) FROM track_points;".into(),
            sqlite_js: sjs("SELECT total(sjs_affine(lat)) FROM track_points;".into()),
            plain: Some("SELECT total(lat * 2 + 1) FROM track_points;".into()),
        },
        Workload {
            id: "W6",
            title: "js_eval('1'): a fresh JS world",
            unit: "per call",
            goal: "≤ 10 µs",
            per: fresh,
            setup: String::new(),
            jsbox: format!("SELECT count(js_eval('1')) FROM generate_series(1, {fresh});"),
            sqlite_js: None,
            plain: None,
        },
    ];
    all.extend(growth(rows, with_sqlite_js));
    all
}

/// The seed script over the FeatureCollection in `table`, `calls` times: jsbox, sqlite-js and
/// plain SQL (which sums the same legs with SQLite's JSON and math functions).
fn seed_jsbox(table: &str, calls: u64) -> String {
    format!("SELECT total(js_eval(s.s, f.j)) FROM generate_series(1, {calls}), seed_script s, {table} f;")
}

fn seed_sqlite_js(table: &str, calls: u64) -> String {
    format!("SELECT total(sjs_seed(f.j)) FROM generate_series(1, {calls}), {table} f;")
}

fn seed_plain(table: &str, calls: u64) -> String {
    format!(
        "SELECT total(d) / 140 FROM (SELECT {DISTANCE_SQL} AS d FROM (SELECT lat, lon, lag(lat) OVER w AS plat, lag(lon) OVER w AS plon \
         FROM (SELECT g.value AS g, e.key AS k, json_extract(e.value, '$.geometry.coordinates[1]') AS lat, \
         json_extract(e.value, '$.geometry.coordinates[0]') AS lon FROM generate_series(1, {calls}) g, {table} f, json_each(f.j, '$.features') e) \
         WINDOW w AS (PARTITION BY g ORDER BY k)));"
    )
}

/// Average bytes of one generated GeoJSON point feature (measured on the generated data).
const FEATURE_BYTES: u64 = 196;

/// W9: how the cost grows with the input. W9a runs W1's script on FeatureCollections of the
/// generated points from 1 KB to 10 MB (1 MB in a quick run, whose data is smaller); W9b runs
/// W2b on the first 1 % and 10 % of the rows (W2b itself is the 100 % point; full runs only).
///
/// W9a takes the points across tracks (`ORDER BY seq, track_fid`), so that its legs are about a
/// kilometre long: over the 10 m legs within a track, the seed formula's `acos` near 1 turns
/// last-bit differences between libms (musl in the sandbox, glibc outside) into relative
/// differences of ~1e-5 on inputs of a few dozen points.
pub fn growth(rows: u64, with_sqlite_js: bool) -> Vec<Workload> {
    let sjs = |sql: String| with_sqlite_js.then_some(sql);
    let mut sizes = vec![1_000u64, 10_000, 100_000, 1_000_000];
    if rows >= 1_000_000 {
        sizes.push(10_000_000);
    }
    let mut all = Vec::new();
    for (i, size) in sizes.iter().copied().enumerate() {
        let table = format!("w9_input_{i}");
        let features = (size / FEATURE_BYTES).max(1);
        // About 2 MB of input per round and engine, at least one call.
        let calls = (2_000_000 / size).clamp(1, 200);
        all.push(Workload {
            id: GROWTH_INPUT_IDS[i],
            title: GROWTH_INPUT_TITLES[i],
            unit: "per call",
            goal: "linear, no knee",
            per: calls,
            setup: format!(
                "CREATE TEMP TABLE {table} AS SELECT json_object('type', 'FeatureCollection', 'features', json_group_array(json(feature))) AS j \
                 FROM (SELECT feature FROM track_points ORDER BY seq, track_fid LIMIT {features});"
            ),
            jsbox: seed_jsbox(&table, calls),
            sqlite_js: sjs(seed_sqlite_js(&table, calls)),
            plain: Some(seed_plain(&table, calls)),
        });
    }
    // The 10,000-row data of a quick run has too few tracks for a series.
    let parts: &[u64] = if rows >= 1_000_000 { &[100, 10] } else { &[] };
    for (i, part) in parts.iter().enumerate() {
        let tracks = rows / part / 1000;
        all.push(Workload {
            id: GROWTH_ROWS_IDS[i],
            title: GROWTH_ROWS_TITLES[i],
            unit: "per row",
            goal: "linear, no knee",
            per: tracks * 1000,
            setup: String::new(),
            jsbox: track_lengths_from_features("jsbox", Some(tracks)),
            sqlite_js: sjs(track_lengths_from_features("sqlite-js", Some(tracks))),
            plain: Some(track_lengths_from_features("plain", Some(tracks))),
        });
    }
    all
}

/// W2b's query for `engine` ("jsbox", "sqlite-js" or "plain"): the length of every track from
/// its GeoJSON features, over the first `tracks` tracks or all of them.
pub fn track_lengths_from_features(engine: &str, tracks: Option<u64>) -> String {
    let filter = tracks.map(|t| format!(" WHERE track_fid < {t}")).unwrap_or_default();
    let per_track = |f: &str| {
        format!("SELECT count(*), total(l) FROM (SELECT {f} AS l FROM (SELECT * FROM track_points{filter} ORDER BY track_fid, seq) GROUP BY track_fid);")
    };
    match engine {
        "jsbox" => per_track("bench_len_feature(feature)"),
        "sqlite-js" => per_track("sjs_len_feature(feature)"),
        _ => {
            let legs = LEGS_FEATURE_SQL.replace("FROM track_points)", &format!("FROM track_points{filter})"));
            format!("SELECT count(*), total(l) FROM (SELECT total({DISTANCE_SQL}) AS l FROM ({legs}) GROUP BY track_fid);")
        }
    }
}

/// The SQL (no dot-commands) that defines `engine`'s functions on a connection where its
/// extension is loaded: sqlite-js's per connection; jsbox's are rows of `js_plugins`, stored by
/// the bench's shell run before.
pub fn functions_sql(engine: &str) -> String {
    match engine {
        "sqlite-js" => sqlite_js_setup(),
        _ => String::new(),
    }
}

/// A shell script's start that loads only `engine`'s extension and defines its functions.
pub fn single_engine_setup(engine: &str, jsbox: &str, sqlite_js: Option<&str>) -> String {
    match (engine, sqlite_js) {
        ("jsbox", _) => format!(".bail on\n.load {jsbox}\n{}", jsbox_setup()),
        ("sqlite-js", Some(sjs)) => format!(".bail on\n.load {sjs}\n{}", sqlite_js_setup()),
        _ => ".bail on\n".into(),
    }
}

const GROWTH_INPUT_IDS: [&str; 5] = ["W9a-1KB", "W9a-10KB", "W9a-100KB", "W9a-1MB", "W9a-10MB"];
const GROWTH_INPUT_TITLES: [&str; 5] = [
    "growth: W1 script, 1 KB input",
    "growth: W1 script, 10 KB input",
    "growth: W1 script, 100 KB input",
    "growth: W1 script, 1 MB input",
    "growth: W1 script, 10 MB input",
];
const GROWTH_ROWS_IDS: [&str; 2] = ["W9b-1%", "W9b-10%"];
const GROWTH_ROWS_TITLES: [&str; 2] = ["growth: W2b on 1 % of the rows", "growth: W2b on 10 % of the rows"];

/// sqlite-js's functions for the same workloads (its API: code strings per callback; state in
/// globals, reset by `final`).
fn sqlite_js_setup() -> String {
    let q = |s: &str| s.replace('\'', "''");
    let seed = std::fs::read_to_string(repo().join("sql/seed_cff.js")).unwrap();
    // The seed script's definitions (without its last line, which runs the calculation).
    let definitions: String = seed.lines().filter(|l| !l.starts_with("calculate(data)")).collect::<Vec<_>>().join("\n");
    // sqlite-js evaluates each function's code in its own scope: helpers are defined inside the
    // scalar's closure, and by the aggregates' init code (which runs per group).
    let distance = format!("distance = {};", DISTANCE_JS.replacen("function distance", "function", 1));
    let len_init = format!("{distance} plat = null; plon = null; m = 0;");
    let len_final = "(function() { const r = m; plat = null; plon = null; m = 0; return r; })";
    let mut sql = String::new();
    let seed_fn = format!("(function() {{ {definitions}\n return function(args) {{ return calculate(JSON.parse(args[0])); }}; }})()");
    writeln!(sql, "SELECT js_create_scalar('sjs_seed', '{}');", q(&seed_fn)).unwrap();
    let step = "(function(args) { const lat = args[0], lon = args[1]; if (plat !== null) m += distance(lat, lon, plat, plon); plat = lat; plon = lon; })";
    writeln!(sql, "SELECT js_create_aggregate('sjs_len', '{}', '{step}', '{len_final}');", q(&len_init)).unwrap();
    let step_feature = "(function(args) { const c = JSON.parse(args[0]).geometry.coordinates; const lat = c[1], lon = c[0]; \
        if (plat !== null) m += distance(lat, lon, plat, plon); plat = lat; plon = lon; })";
    writeln!(sql, "SELECT js_create_aggregate('sjs_len_feature', '{}', '{step_feature}', '{len_final}');", q(&len_init)).unwrap();
    let run_init = format!("{distance} pts = []; m = 0;");
    let run_step = "(function(args) { const p = [args[0], args[1]]; const l = pts[pts.length - 1]; if (l) m += distance(p[0], p[1], l[0], l[1]); pts.push(p); })";
    let run_inverse =
        "(function(args) { const f = pts.shift(); if (pts.length) m -= distance(pts[0][0], pts[0][1], f[0], f[1]); else m = 0; })";
    let run_value = "(function() { return m; })";
    let run_final = "(function() { const r = m; pts = []; m = 0; return r; })";
    writeln!(sql, "SELECT js_create_window('sjs_run', '{}', '{run_step}', '{run_final}', '{run_value}', '{run_inverse}');", q(&run_init))
        .unwrap();
    writeln!(sql, "SELECT js_create_scalar('sjs_affine', '(function(args) {{ return args[0] * 2 + 1; }})');").unwrap();
    sql
}

/// jsbox's stored plugins for the same workloads.
/// W10: turf.js as published (a UMD bundle stored as a `commonjs` module) and two plugins that
/// import it: a track's length, and a running length (leg by leg, as W3's hand-written plugin).
fn turf_setup() -> String {
    let len = "import { length, lineString } from 'turf';
export function init() { return []; }
export function step(s, lat, lon) { s.push([lon, lat]); return s; }
export function final(s) { return s.length < 2 ? 0 : length(lineString(s), { units: 'meters' }); }";
    let run = "import { distance } from 'turf';
export function init() { return { pts: [], m: 0 }; }
export function step(s, lat, lon) { const l = s.pts[s.pts.length - 1]; if (l) s.m += distance(l, [lon, lat], { units: 'meters' }); s.pts.push([lon, lat]); return s; }
export function inverse(s) { const f = s.pts.shift(); if (s.pts.length) s.m -= distance(f, s.pts[0], { units: 'meters' }); else s.m = 0; return s; }
export function final(s) { return s.m; }";
    let mut sql = String::from(
        "INSERT OR REPLACE INTO js_modules(name, kind, source) VALUES ('turf', 'commonjs', CAST(readfile('fixtures/vendor/turf/turf.min.js') AS TEXT));\n",
    );
    for (name, kind, source) in [("bench_turf_len", "aggregate", len), ("bench_turf_run", "window", run)] {
        writeln!(
            sql,
            "INSERT OR REPLACE INTO js_plugins(name, kind, source) VALUES ('{name}', '{kind}', '{}');",
            source.replace('\'', "''")
        )
        .unwrap();
    }
    sql
}

fn jsbox_setup() -> String {
    let q = |s: &str| s.replace('\'', "''");
    let len = format!(
        "{DISTANCE_JS}
function init() {{ return {{ plat: null, plon: null, m: 0 }}; }}
function step(s, lat, lon) {{ if (s.plat !== null) s.m += distance(lat, lon, s.plat, s.plon); s.plat = lat; s.plon = lon; return s; }}
function final(s) {{ return s.m; }}"
    );
    let len_feature = format!(
        "{DISTANCE_JS}
function init() {{ return {{ plat: null, plon: null, m: 0 }}; }}
function step(s, f) {{ const c = f.geometry.coordinates; const lat = c[1], lon = c[0]; if (s.plat !== null) s.m += distance(lat, lon, s.plat, s.plon); s.plat = lat; s.plon = lon; return s; }}
function final(s) {{ return s.m; }}"
    );
    let run = format!(
        "{DISTANCE_JS}
function init() {{ return {{ pts: [], m: 0 }}; }}
function step(s, lat, lon) {{ const l = s.pts[s.pts.length - 1]; if (l) s.m += distance(lat, lon, l[0], l[1]); s.pts.push([lat, lon]); return s; }}
function inverse(s) {{ const f = s.pts.shift(); if (s.pts.length) s.m -= distance(s.pts[0][0], s.pts[0][1], f[0], f[1]); else s.m = 0; return s; }}
function final(s) {{ return s.m; }}"
    );
    let affine = "function main(x) { return x * 2 + 1; }";
    let mut sql = String::from("SELECT js_plugins_init();\nDELETE FROM js_plugins WHERE name LIKE 'bench\\_%' ESCAPE '\\';\n");
    for (name, kind, source, deterministic) in [
        ("bench_len", "aggregate", len.as_str(), 0),
        ("bench_len_feature", "aggregate", len_feature.as_str(), 0),
        ("bench_run", "window", run.as_str(), 0),
        ("bench_affine", "scalar", affine, 0),
        // W14: the same plugins, deterministic (steps, not time; seeded per row).
        ("bench_len_det", "aggregate", len.as_str(), 1),
        ("bench_run_det", "window", run.as_str(), 1),
    ] {
        writeln!(
            sql,
            "INSERT INTO js_plugins(name, kind, source, deterministic) VALUES ('{name}', '{kind}', '{}', {deterministic});",
            q(source)
        )
        .unwrap();
    }
    sql
}

/// Loads the extensions and defines every engine's functions and the fixture tables.
pub fn setup(jsbox: &str, sqlite_js: Option<&str>, seed: &Path) -> String {
    let mut s = String::from(".bail on\n");
    if let Some(sjs) = sqlite_js {
        // First, so that jsbox's js_eval (loaded after) is the one the workloads call.
        writeln!(s, ".load {sjs}").unwrap();
        s.push_str(&sqlite_js_setup());
    }
    writeln!(s, ".load {jsbox}").unwrap();
    s.push_str(&jsbox_setup());
    writeln!(s, "CREATE TEMP TABLE fixture AS SELECT CAST(readfile('{}') AS TEXT) AS j;", seed.display()).unwrap();
    s.push_str("CREATE TEMP TABLE seed_script AS SELECT CAST(readfile('sql/seed_cff.js') AS TEXT) AS s;\n");
    // W9's largest input (10 MB of GeoJSON) needs more than the default 64 MiB and 1 s.
    s.push_str("SELECT js_config('memory_limit_mb', 1024), js_config('time_limit_ms', 60000);\n");
    s
}

/// The whole shell script: the setup, then `rounds` rounds of every workload for every engine,
/// interleaved, each statement tagged for its timer line.
pub fn script(workloads: &[Workload], rounds: usize, jsbox: &str, sqlite_js: Option<&str>, seed: &Path) -> String {
    let mut s = setup(jsbox, sqlite_js, seed);
    for w in workloads {
        s.push_str(&w.setup);
        s.push('\n');
    }
    s.push_str(".timer on\n");
    for _ in 0..rounds {
        for w in workloads {
            for (engine, sql) in w.engines() {
                writeln!(s, ".print {TAG}{}/{engine}\n{sql}", w.id).unwrap();
            }
        }
    }
    s
}

impl Workload {
    /// The engines this workload runs on, with their SQL.
    pub fn engines(&self) -> impl Iterator<Item = (&'static str, &String)> {
        [("jsbox", Some(&self.jsbox)), ("sqlite-js", self.sqlite_js.as_ref()), ("plain", self.plain.as_ref())]
            .into_iter()
            .filter_map(|(engine, sql)| sql.map(|sql| (engine, sql)))
    }
}
