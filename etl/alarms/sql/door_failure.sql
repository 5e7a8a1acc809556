-- door_failure: runs of consecutive failed hours of a door (door_hourly_sensor, a reading that
-- never came) as reports: active at the first failed hour's start and the last one's end,
-- inactive there once the next hour is complete.
WITH failed AS (
    SELECT store || '/' || sensor_id AS originator, ts
    FROM door_hourly_sensor
    WHERE failed_readings > 0
),

numbered AS (
    SELECT *, ts - to_hours(row_number() OVER (PARTITION BY originator ORDER BY ts)) AS run FROM failed
),

runs AS (
    SELECT originator, min(ts) AS start, max(ts) + INTERVAL 1 HOUR AS "end", json_object('failed_hours', count(*)) AS details
    FROM numbered
    GROUP BY originator, run
),

reports AS (
    SELECT originator, start AS observed_at, start AS known_at, TRUE AS active, details FROM runs
    UNION ALL
    SELECT originator, "end", "end", TRUE, details FROM runs
    UNION ALL
    SELECT originator, "end", "end" + INTERVAL 1 HOUR, FALSE, details FROM runs
)

SELECT originator, 'door_failure' AS type, 'MAJOR' AS severity, epoch_us(observed_at) AS observed_us, active, CAST(details AS VARCHAR) AS details
FROM reports
WHERE known_at > $since AND known_at <= $now
