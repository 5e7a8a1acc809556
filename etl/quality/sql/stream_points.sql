-- stream_points: every 10-minute bucket of a robot that robot_fits has (a trend of at least 12
-- buckets on any axis), labelled when an injected `anomaly` block of any of its axes overlaps it,
-- alarmed when an alert of the streaming job (LAKE/alerts/stream: `sensor` is the robot, one
-- key per robot over its 8 axes) overlaps it; an alert still open at the lake's last flush ends
-- at its last update. Detector `stream_alerts`.
-- Tables: fits (robot_fits), stream (the job's alerts), events (/v1/events?kind=robots).
WITH buckets AS (
    SELECT DISTINCT robot_id, bucket, bucket + INTERVAL 10 MINUTE AS bucket_end
    FROM fits
    WHERE fit_buckets >= 12
),

labelled AS (
    SELECT DISTINCT b.robot_id, b.bucket
    FROM buckets AS b
    JOIN events AS e
        ON e.type = 'anomaly' AND e.robot_id = b.robot_id AND e.start < b.bucket_end AND e."end" > b.bucket
),

alarmed AS (
    SELECT DISTINCT b.robot_id, b.bucket
    FROM buckets AS b
    JOIN stream AS s
        ON s.sensor = b.robot_id AND s.start < b.bucket_end AND coalesce(s."end", s.updated) >= b.bucket
),

points AS (
    SELECT
        'stream_alerts' AS detector,
        b.robot_id AS series,
        b.bucket AS ts,
        600.0 AS step_seconds,
        l.bucket IS NOT NULL AS label,
        a.bucket IS NOT NULL AS alarm,
        b.robot_id AS robot,
        CAST(isodow(b.bucket) AS BIGINT) AS weekday,
        CAST(hour(b.bucket) AS BIGINT) AS hour
    FROM buckets AS b
    LEFT JOIN labelled AS l USING (robot_id, bucket)
    LEFT JOIN alarmed AS a USING (robot_id, bucket)
)

SELECT * FROM points ORDER BY series, ts
