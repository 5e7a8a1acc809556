-- door_replacement and door_underused: door_health's daily flags as reports, one per door and day
-- that is flagged or follows a flagged day, at the day's end (UTC), or at $now for the running day.
WITH days AS (
    SELECT
        store || '/' || sensor_id AS originator,
        least(CAST(local_date AS TIMESTAMP) AT TIME ZONE 'UTC' + INTERVAL 1 DAY, $now) AS observed_at,
        replacement_warning,
        coalesce(lag(replacement_warning) OVER by_door, FALSE) AS replacement_before,
        underused,
        coalesce(lag(underused) OVER by_door, FALSE) AS underused_before,
        json_object(
            'local_date', CAST(local_date AS VARCHAR), 'failure_rate_30d', round(failure_rate_30d, 4),
            'failure_rate_7d', round(failure_rate_7d, 4), 'traffic_share', round(traffic_share, 4),
            'median_share', round(median_share, 4)
        ) AS details
    FROM door_health
    WHERE CAST(local_date AS TIMESTAMP) AT TIME ZONE 'UTC' < $now  -- days begun by the run (a replay's marts hold later ones)
    WINDOW by_door AS (PARTITION BY store, sensor_id ORDER BY local_date)
),

reports AS (
    SELECT originator, 'door_replacement' AS type, 'MAJOR' AS severity, observed_at, replacement_warning AS active, details
    FROM days
    WHERE replacement_warning OR replacement_before
    UNION ALL
    SELECT originator, 'door_underused', 'WARNING', observed_at, underused, details
    FROM days
    WHERE underused OR underused_before
)

SELECT originator, type, severity, epoch_us(observed_at) AS observed_us, coalesce(active, FALSE) AS active, CAST(details AS VARCHAR) AS details
FROM reports
WHERE observed_at > $since AND observed_at <= $now
