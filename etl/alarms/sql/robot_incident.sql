-- robot_incident: each incident of robot_incidents as reports: active at its start and its end,
-- inactive at its end once $gap_seconds have passed without a flagged reading (until then the
-- incident may still grow). known_at: when a run can know the report.
WITH incidents AS (
    SELECT
        robot_id || '/' || axis AS originator,
        start,
        "end",
        CASE level WHEN 'ERROR' THEN 'CRITICAL' ELSE 'MAJOR' END AS severity,
        json_object(
            'level', level, 'start', strftime(start, '%Y-%m-%dT%H:%M:%SZ'),
            'end', strftime("end", '%Y-%m-%dT%H:%M:%SZ'), 'flagged_readings', flagged_readings,
            'peak_sigmas', round(peak_sigmas, 2)
        ) AS details
    FROM robot_incidents
),

reports AS (
    SELECT originator, severity, start AS observed_at, start AS known_at, TRUE AS active, details FROM incidents
    UNION ALL
    SELECT originator, severity, "end", "end", TRUE, details FROM incidents
    UNION ALL
    SELECT originator, severity, "end", "end" + to_seconds($gap_seconds), FALSE, details FROM incidents
)

SELECT originator, 'robot_incident' AS type, severity, epoch_us(observed_at) AS observed_us, active, CAST(details AS VARCHAR) AS details
FROM reports
WHERE known_at > $since AND known_at <= $now
