-- robot_alerts: every moving reading whose neighbourhood leaves the trend: the mean residual
-- of the axis's moving samples within 2 samples of it (up to 5) against the trend of
-- robot_fits, in sigmas of a single reading: ALERT beyond 2, ERROR beyond 4. Judging a few
-- samples, not a lone one, is what makes a 2-sigma rule meaningful: a single-sample rule
-- flags 4.6 % of healthy samples; short enough that a block covering part of a motion counts.
-- Readings within the ALERT band are not listed.
--
-- Only buckets whose readings left the trend are judged reading by reading. An anomaly block
-- moves its bucket's mean by several standard errors (sigma / sqrt(moving samples)), and a
-- short one its squared residuals (about n sigma² in a healthy bucket, a chi-squared with n
-- degrees of freedom, standard deviation sqrt(2n)). A bucket is judged when either moved
-- beyond $screen_sigmas of their standard deviations, or when the mean of it and the next
-- moved that far (a block cut in two by a bucket boundary): a few percent of healthy buckets.
WITH fitted AS (
    SELECT
        robot_id,
        axis,
        epoch_us(bucket) // 600000000 AS bucket_no,
        slope,
        intercept,
        sigma,
        moving_samples AS n,
        (mean - expected) * moving_samples / sigma AS residuals,  -- summed, in sigmas
        -- the squared residuals summed, in sigma²: about n for a healthy bucket (chi-squared)
        moving_samples * (std * std + (mean - expected) * (mean - expected)) / (sigma * sigma) AS squares
    FROM robot_fits
    -- a trend of at least 2 hours, from the day before the dates being written (motions at
    -- midnight look into it)
    WHERE fit_buckets >= 12 AND bucket >= CAST($first_date AS TIMESTAMP) - INTERVAL 1 DAY
),

marked AS (
    SELECT
        a.robot_id,
        a.axis,
        a.bucket_no,
        abs(a.residuals) / sqrt(a.n) > $screen_sigmas OR (a.squares - a.n) / sqrt(2 * a.n) > $screen_sigmas AS alone,
        coalesce(abs(a.residuals + b.residuals) / sqrt(a.n + b.n) > $screen_sigmas, false) AS with_next
    FROM fitted AS a
    LEFT JOIN fitted AS b ON b.robot_id = a.robot_id AND b.axis = a.axis AND b.bucket_no = a.bucket_no + 1
),

judged AS (
    SELECT robot_id, axis, bucket_no FROM marked WHERE alone OR with_next
    UNION
    SELECT robot_id, axis, bucket_no + 1 FROM marked WHERE with_next
),

context AS (
    -- the judged buckets and one either side: the readings at their edges look 2 samples out
    SELECT j.robot_id, j.axis, j.bucket_no + o.step AS bucket_no, bool_or(o.step = 0) AS judged
    FROM judged AS j, (VALUES (-1), (0), (1)) AS o(step)
    GROUP BY ALL
),

readings AS (
    SELECT
        r.robot_id,
        c.axis,
        r.ts,
        c.judged,
        [r.axis1, r.axis2, r.axis3, r.axis4, r.axis5, r.axis6, r.axis7, r.axis8][
            list_position(['axis1', 'axis2', 'axis3', 'axis4', 'axis5', 'axis6', 'axis7', 'axis8'], c.axis)
        ] AS value,
        f.slope,
        f.intercept,
        f.sigma
    FROM raw_robots AS r
    JOIN context AS c ON c.robot_id = r.robot_id AND c.bucket_no = epoch_us(r.ts) // 600000000
    LEFT JOIN fitted AS f ON f.robot_id = c.robot_id AND f.axis = c.axis AND f.bucket_no = c.bucket_no
),

residuals AS (
    -- rests (exactly 0) have no residual: they are in no mean
    SELECT *, CASE WHEN value <> 0 THEN (value - (intercept + slope * epoch(ts))) / sigma END AS z
    FROM readings
),

motions AS (
    SELECT
        robot_id,
        axis,
        ts,
        judged,
        value,
        -- the 5 rows around each reading, rests left out; lag/lead arithmetic is 40 % faster
        -- than a windowed avg over a ROWS frame
        coalesce(lag(z, 2) OVER by_time, 0) + coalesce(lag(z, 1) OVER by_time, 0) + coalesce(z, 0)
            + coalesce(lead(z, 1) OVER by_time, 0) + coalesce(lead(z, 2) OVER by_time, 0) AS total,
        (lag(z, 2) OVER by_time IS NOT NULL)::INTEGER + (lag(z, 1) OVER by_time IS NOT NULL)::INTEGER
            + (z IS NOT NULL)::INTEGER
            + (lead(z, 1) OVER by_time IS NOT NULL)::INTEGER + (lead(z, 2) OVER by_time IS NOT NULL)::INTEGER
            AS moving
    FROM residuals
    WINDOW by_time AS (PARTITION BY robot_id, axis ORDER BY ts)
),

final AS (
    SELECT
        robot_id,
        axis,
        ts,
        value,
        total / moving AS motion_sigmas,
        CASE WHEN abs(total / moving) > 4 THEN 'ERROR' ELSE 'ALERT' END AS level,
        CAST(ts AS DATE) AS part_date
    FROM motions
    -- at least 3 moving samples: a mean of fewer is too noisy to judge
    WHERE judged AND value <> 0 AND moving >= 3 AND abs(total / moving) > 2
)

SELECT * FROM final
