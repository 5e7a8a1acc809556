-- maintenance_due: robot_maintenance's forecast as daily reports per axis: due within
-- $horizon_days (WARNING), or in the ERROR band already (MAJOR); at the day's end, or at $now.
WITH days AS (
    SELECT
        robot_id || '/' || axis AS originator,
        least(CAST(date AS TIMESTAMP) AT TIME ZONE 'UTC' + INTERVAL 1 DAY, $now) AS observed_at,
        coalesce(days_to_error <= $horizon_days, FALSE) AS due,
        days_to_error,
        status
    FROM robot_maintenance
    WHERE CAST(date AS TIMESTAMP) AT TIME ZONE 'UTC' < $now  -- days begun by the run (a replay's marts hold later ones)
),

flagged AS (
    SELECT *, coalesce(lag(due) OVER (PARTITION BY originator ORDER BY observed_at), FALSE) AS due_before FROM days
)

SELECT
    originator,
    'maintenance_due' AS type,
    CASE WHEN days_to_error = 0 THEN 'MAJOR' ELSE 'WARNING' END AS severity,
    epoch_us(observed_at) AS observed_us,
    due AS active,
    CAST(json_object('status', status, 'days_to_error', round(days_to_error, 1)) AS VARCHAR) AS details
FROM flagged
WHERE (due OR due_before) AND observed_at > $since AND observed_at <= $now
