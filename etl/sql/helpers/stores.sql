-- stores (a helper, not a mart: etl/transform.py's connect() makes it from the site registry
-- for every query that reads `stores`): one row per store, its time zone and its doors. From
-- list parameters, not a registered Arrow table: DuckDB imports pandas (0.15 s of a
-- transform's start-up) the first time it is handed a Python object to scan.
CREATE TEMP TABLE stores AS
SELECT
    unnest($name::VARCHAR[]) AS name,
    unnest($timezone::VARCHAR[]) AS timezone,
    unnest($doors::INTEGER[]) AS doors
