-- door_anomaly (a door) and store_anomaly (a whole store): runs of consecutive anomalous hours of
-- door_anomalies as reports: active at the first hour's start (its level), active at the last
-- hour's end (the run's highest level), inactive there once the next hour is complete.
WITH hours AS (
    SELECT
        CASE grain WHEN 'sensor' THEN store || '/' || sensor_id ELSE store END AS originator,
        CASE grain WHEN 'sensor' THEN 'door_anomaly' ELSE 'store_anomaly' END AS type,
        ts,
        CASE level WHEN 'critical' THEN 'MAJOR' ELSE 'MINOR' END AS severity,
        direction,
        score,
        visits,
        baseline
    FROM door_anomalies
    WHERE resolution = 'hour'
),

numbered AS (
    SELECT *, ts - to_hours(row_number() OVER (PARTITION BY originator, type ORDER BY ts)) AS run
    FROM hours
),

runs AS (
    SELECT
        originator,
        type,
        min(ts) AS start,
        max(ts) + INTERVAL 1 HOUR AS "end",
        arg_min(severity, ts) AS first_severity,
        bool_or(severity = 'MAJOR') AS major,
        json_object(
            'hours', count(*), 'direction', arg_max(direction, abs(score)), 'peak_score', round(max(abs(score)), 2),
            'visits', arg_max(visits, abs(score)), 'baseline', arg_max(baseline, abs(score))
        ) AS details
    FROM numbered
    GROUP BY originator, type, run
),

reports AS (
    SELECT originator, type, first_severity AS severity, start AS observed_at, start AS known_at, TRUE AS active, details
    FROM runs
    UNION ALL
    SELECT originator, type, CASE WHEN major THEN 'MAJOR' ELSE 'MINOR' END, "end", "end", TRUE, details FROM runs
    UNION ALL
    SELECT originator, type, CASE WHEN major THEN 'MAJOR' ELSE 'MINOR' END, "end", "end" + INTERVAL 1 HOUR, FALSE, details
    FROM runs
)

SELECT originator, type, severity, epoch_us(observed_at) AS observed_us, active, CAST(details AS VARCHAR) AS details
FROM reports
WHERE known_at > $since AND known_at <= $now
