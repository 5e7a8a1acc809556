-- door_points: every door-hour that door_anomalies judges (visits, at least $anomaly_min_periods
-- earlier same weekday-hours within $anomaly_weeks weeks, a positive trimmed baseline, as its
-- `hour_tests` require), labelled by the simulator's events (an injected `anomaly`, `burst` or
-- `dip` of that door, or a store-wide `surge` or `day_off`, covers the hour: bench/quality.py's
-- targets; failures are not this detector's) and alarmed when door_anomalies flagged that door's
-- hour (either direction).
-- Tables: hours (door_hourly_sensor), flags (door_anomalies), events (/v1/events?kind=doors).
WITH history AS (
    SELECT
        ts, store, sensor_id, weekday, local_hour, visits,
        count(visits) OVER w AS periods,
        sum(visits) OVER w AS total,
        max(visits) OVER w AS highest,
        min(visits) OVER w AS lowest
    FROM hours
    WINDOW w AS (
        PARTITION BY store, sensor_id, weekday, local_hour ORDER BY local_date
        RANGE BETWEEN to_days(7 * $anomaly_weeks) PRECEDING AND INTERVAL 1 DAY PRECEDING
    )
),

judged AS (
    SELECT
        *,
        -- door_anomalies' trimmed baseline
        CASE
            WHEN periods >= 5 THEN (total - highest - lowest) / (periods - 2)
            WHEN periods > 0 THEN total / periods
        END AS baseline
    FROM history
),

labelled AS (
    SELECT DISTINCT j.store, j.sensor_id, j.ts
    FROM judged AS j
    JOIN events AS e
        ON e.type IN ('anomaly', 'burst', 'dip', 'surge', 'day_off') AND e.store = j.store
        AND (e.sensor_id IS NULL OR e.sensor_id = j.sensor_id)
        AND e.start < j.ts + INTERVAL 1 HOUR AND e."end" > j.ts
),

alarmed AS (
    SELECT DISTINCT store, sensor_id, ts FROM flags WHERE resolution = 'hour' AND grain = 'sensor'
)

SELECT
    'door_anomalies' AS detector,
    j.store || '/' || j.sensor_id AS series,
    j.ts,
    3600.0 AS step_seconds,
    l.ts IS NOT NULL AS label,
    a.ts IS NOT NULL AS alarm,
    j.store,
    j.store || '/' || j.sensor_id AS door,  -- door numbers repeat across stores
    CAST(j.weekday AS BIGINT) AS weekday,
    CAST(j.local_hour AS BIGINT) AS hour,
    CAST(j.visits AS DOUBLE) AS visits
FROM judged AS j
LEFT JOIN labelled AS l USING (store, sensor_id, ts)
LEFT JOIN alarmed AS a USING (store, sensor_id, ts)
WHERE j.visits IS NOT NULL AND j.baseline > 0 AND j.periods >= $anomaly_min_periods
ORDER BY series, j.ts
