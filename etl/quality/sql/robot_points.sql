-- robot_points: every 10-minute bucket of an axis that robot_alerts judges (a trend of at least
-- 12 buckets), labelled when an injected `anomaly` block of that axis overlaps it, alarmed
-- when a robot_incidents incident overlaps it (detector `robot_incidents`) or a robot_alerts
-- reading falls in it (detector `robot_alerts`).
-- Tables: fits (robot_fits), incidents, alerts, events (/v1/events?kind=robots).
WITH buckets AS (
    SELECT robot_id, axis, bucket, bucket + INTERVAL 10 MINUTE AS bucket_end, mean, moving_samples
    FROM fits
    WHERE fit_buckets >= 12
),

labelled AS (
    SELECT DISTINCT b.robot_id, b.axis, b.bucket
    FROM buckets AS b
    JOIN events AS e
        ON e.type = 'anomaly' AND e.robot_id = b.robot_id AND e.axis = b.axis
        AND e.start < b.bucket_end AND e."end" > b.bucket
),

by_incident AS (
    SELECT DISTINCT b.robot_id, b.axis, b.bucket
    FROM buckets AS b
    JOIN incidents AS i
        ON i.robot_id = b.robot_id AND i.axis = b.axis AND i.start < b.bucket_end AND i."end" >= b.bucket
),

by_alert AS (
    SELECT DISTINCT b.robot_id, b.axis, b.bucket
    FROM buckets AS b
    JOIN alerts AS a ON a.robot_id = b.robot_id AND a.axis = b.axis AND a.ts >= b.bucket AND a.ts < b.bucket_end
),

points AS (
    SELECT
        b.robot_id || '/' || b.axis AS series,
        b.bucket AS ts,
        600.0 AS step_seconds,
        l.bucket IS NOT NULL AS label,
        i.bucket IS NOT NULL AS incident,
        a.bucket IS NOT NULL AS alert,
        b.robot_id AS robot,
        b.axis,
        CAST(isodow(b.bucket) AS BIGINT) AS weekday,
        CAST(hour(b.bucket) AS BIGINT) AS hour,
        b.mean,
        CAST(b.moving_samples AS DOUBLE) AS moving_samples
    FROM buckets AS b
    LEFT JOIN labelled AS l USING (robot_id, axis, bucket)
    LEFT JOIN by_incident AS i USING (robot_id, axis, bucket)
    LEFT JOIN by_alert AS a USING (robot_id, axis, bucket)
)

SELECT 'robot_incidents' AS detector, * EXCLUDE (incident, alert), incident AS alarm FROM points
UNION ALL
SELECT 'robot_alerts' AS detector, * EXCLUDE (incident, alert), alert AS alarm FROM points
ORDER BY detector, series, ts
