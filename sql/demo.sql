-- jsbox demo (`make demo`): run with the sqlite3 shell from the repository's root.
-- Each track's length in Canadian football fields (140 m), computed twice: by the seed post's
-- JavaScript in the jsbox sandbox, and by plain SQL with SQLite's math functions.
.bail on
.load ./target/release/libjsbox
.mode box
.print 'jsbox'
SELECT js_version() AS jsbox, json_extract(js_debug(), '$.quickjs') AS quickjs,
       json_extract(js_debug(), '$.wasmtime') AS wasmtime, sqlite_version() AS sqlite;

.print ''
.print 'The seed post fixture (260 points), as in the post:'
SELECT js_eval('data.features.length', readfile('fixtures/seed_track_points.json')) AS features,
       round(js_eval(readfile('sql/seed_cff.js'), readfile('fixtures/seed_track_points.json')), 4)
         AS canadian_football_fields;

.read sql/tracks.sql

.print ''
.print 'fixtures/track_points.geojson, per track: JavaScript in the sandbox vs plain SQL'
WITH
  -- One FeatureCollection per track, points in order, handed to the seed's script as `data`.
  collections AS (
    SELECT track_fid, count(*) AS points,
           json_object('type', 'FeatureCollection', 'features', json_group_array(json(feature))) AS fc
    FROM (SELECT * FROM track_points ORDER BY track_fid, seq)
    GROUP BY track_fid
  ),
  js AS (
    SELECT track_fid, points, js_eval(readfile('sql/seed_cff.js'), fc) AS fields FROM collections
  ),
  -- The same formula in SQL: each point against the previous one of its track.
  legs AS (
    SELECT track_fid, lat, lon,
           lag(lat) OVER w AS plat, lag(lon) OVER w AS plon
    FROM track_points WINDOW w AS (PARTITION BY track_fid ORDER BY seq)
  ),
  plain AS (
    SELECT track_fid,
           sum(CASE WHEN plat IS NULL OR (lat = plat AND lon = plon) THEN 0
                    ELSE degrees(acos(min(1.0,
                           sin(radians(lat)) * sin(radians(plat)) +
                           cos(radians(lat)) * cos(radians(plat)) * cos(radians(lon - plon)))))
                         * 60 * 1853.159 END) / 140 AS fields
    FROM legs GROUP BY track_fid
  )
SELECT js.track_fid, js.points,
       printf('%.4f', js.fields) AS js_fields,
       printf('%.4f', plain.fields) AS sql_fields,
       printf('%.1e', abs(js.fields - plain.fields) / plain.fields) AS rel_diff
FROM js JOIN plain USING (track_fid)
ORDER BY js.track_fid;

.print ''
.print 'Stored plugins (sql/plugins/*.js), registered as SQL functions from the js_plugins table:'
SELECT js_plugins_init() AS plugins_before;
INSERT OR REPLACE INTO js_plugins(name, kind, source, description) VALUES
  ('track_cff', 'window', readfile('sql/plugins/track_cff.js'), 'track length in Canadian football fields'),
  ('elevation_gain', 'aggregate', readfile('sql/plugins/elevation_gain.js'), 'total climb in meters'),
  ('bbox', 'aggregate', readfile('sql/plugins/bbox.js'), 'bounding box as a GeoJSON Polygon'),
  ('speed_kmh', 'window', readfile('sql/plugins/speed_kmh.js'), 'speed from the previous point'),
  ('convert_length', 'scalar', readfile('sql/plugins/convert_length.js'), 'length unit converter');
SELECT name, kind, description FROM js_plugins ORDER BY name;

.print ''
.print 'Aggregates per track (GROUP BY): length, climb, bounding box, and the length in miles'
SELECT track_fid,
       printf('%.4f', track_cff(feature)) AS fields,
       printf('%.3f', convert_length(track_cff(feature), 'cff', 'mi')) AS miles,
       printf('%.1f', elevation_gain(ele)) AS climb_m,
       printf('%.5f', json_extract(bbox(lon, lat), '$.coordinates[0][0][0]')) AS west,
       printf('%.5f', json_extract(bbox(lon, lat), '$.coordinates[0][2][1]')) AS north,
       count(*) AS n
FROM (SELECT * FROM track_points ORDER BY track_fid, seq)
GROUP BY track_fid;

.print ''
.print 'Windows, first points of track 0: running length and speed from the previous point'
SELECT seq,
       printf('%.4f', track_cff(feature) OVER w) AS running_fields,
       round(speed_kmh(feature) OVER (w ROWS 1 PRECEDING), 2) AS kmh
FROM track_points WHERE track_fid = 0
WINDOW w AS (PARTITION BY track_fid ORDER BY seq)
ORDER BY seq LIMIT 6;
