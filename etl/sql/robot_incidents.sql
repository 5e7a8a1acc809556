-- robot_incidents: flagged readings of one axis merged into incidents while less than
-- $incident_gap_seconds apart (an axis rests 13 samples between motions, so one anomaly's
-- motions merge). An incident lasts at least the median sampling interval, as the original
-- chose; a lone flagged reading is noise, not an incident. `level` goes by the incident's median motion size, robust to a single noisy motion;
-- `peak_level` by its largest.
WITH intervals AS (
    -- the median sampling interval, from the buckets' sample counts (a sort of every raw
    -- reading by time took longer than the rest of the table)
    SELECT robot_id, median(600.0 / samples) AS sample_seconds
    FROM robot_fits
    GROUP BY robot_id
),

starts AS (
    SELECT
        *,
        CASE
            WHEN epoch(ts) - epoch(lag(ts) OVER by_axis) < $incident_gap_seconds THEN 0 ELSE 1
        END AS starts_incident
    FROM robot_alerts
    WINDOW by_axis AS (PARTITION BY robot_id, axis ORDER BY ts)
),

numbered AS (
    SELECT *, sum(starts_incident) OVER (PARTITION BY robot_id, axis ORDER BY ts) AS incident
    FROM starts
),

incidents AS (
    SELECT
        robot_id,
        axis,
        min(ts) AS start,
        max(ts) AS last_flagged,
        count(*) AS flagged_readings,
        median(abs(motion_sigmas)) AS median_sigmas,
        max(abs(motion_sigmas)) AS peak_sigmas,
        arg_max(motion_sigmas, abs(motion_sigmas)) AS signed_peak
    FROM numbered
    GROUP BY robot_id, axis, incident
),

final AS (
    SELECT
        i.robot_id,
        i.axis,
        i.start,
        i.last_flagged + to_seconds(coalesce(s.sample_seconds, 10)) AS "end",
        i.flagged_readings,
        i.median_sigmas,
        i.signed_peak AS peak_sigmas,
        CASE WHEN i.median_sigmas > 4 THEN 'ERROR' ELSE 'ALERT' END AS level,
        CASE WHEN i.peak_sigmas > 4 THEN 'ERROR' ELSE 'ALERT' END AS peak_level,
        CAST(i.start AS DATE) AS part_date
    FROM incidents AS i
    LEFT JOIN intervals AS s ON s.robot_id = i.robot_id
    WHERE i.flagged_readings >= $incident_min_readings
)

SELECT * FROM final
