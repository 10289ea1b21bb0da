-- Loads a GeoJSON FeatureCollection of Point features (the shell's readfile() of a fixture) into
-- track_points(track_fid, seq, lon, lat, ele, feature), one row per point.
-- Usage in the sqlite3 shell:  .parameter set :geojson "readfile('fixtures/track_points.geojson')"
-- or, as demo.sql does, inline readfile() below.
DROP TABLE IF EXISTS track_points;
CREATE TABLE track_points (
  track_fid INTEGER NOT NULL,
  seq       INTEGER NOT NULL,
  lon       REAL NOT NULL,
  lat       REAL NOT NULL,
  ele       REAL,
  feature   TEXT NOT NULL,        -- the whole GeoJSON Feature, as JSON text
  PRIMARY KEY (track_fid, seq)
);
INSERT INTO track_points
SELECT json_extract(value, '$.properties.track_fid'),
       json_extract(value, '$.properties.track_seg_point_id'),
       json_extract(value, '$.geometry.coordinates[0]'),
       json_extract(value, '$.geometry.coordinates[1]'),
       json_extract(value, '$.properties.ele'),
       value
FROM json_each(readfile('fixtures/track_points.geojson'), '$.features');
