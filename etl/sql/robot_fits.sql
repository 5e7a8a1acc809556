-- robot_fits: per robot, axis and 10-minute bucket, the axis's moving samples (an axis
-- reads exactly 0 at rest, so rests are left out: regressing through them would make the
-- duty cycle, not the signal, the residual) and the straight line fitted by least squares
-- through the bucket means of the previous 6 hours. `sigma` is the readings' scatter around
-- that trend (pooled within-bucket standard deviation): the unit of ALERT and ERROR.
WITH samples AS (
    SELECT robot_id, time_bucket(INTERVAL 10 MINUTES, ts) AS bucket, COLUMNS('^axis\d$')
    FROM raw_robots
),

wide AS (
    SELECT
        robot_id,
        bucket,
        count(*) AS samples,
        count(nullif(COLUMNS('^axis\d$'), 0)) AS 'n_\0',
        avg(nullif(COLUMNS('^axis\d$'), 0)) AS 'y_\0',
        var_pop(nullif(COLUMNS('^axis\d$'), 0)) AS 'v_\0'
    FROM samples
    GROUP BY robot_id, bucket
),

buckets AS (
    UNPIVOT wide ON
        (n_axis1, y_axis1, v_axis1) AS axis1, (n_axis2, y_axis2, v_axis2) AS axis2,
        (n_axis3, y_axis3, v_axis3) AS axis3, (n_axis4, y_axis4, v_axis4) AS axis4,
        (n_axis5, y_axis5, v_axis5) AS axis5, (n_axis6, y_axis6, v_axis6) AS axis6,
        (n_axis7, y_axis7, v_axis7) AS axis7, (n_axis8, y_axis8, v_axis8) AS axis8
    INTO NAME axis VALUE n, mean, var
),

timed AS (
    -- A bucket's mean stands at its midpoint: the moving samples spread evenly through it.
    SELECT *, epoch(bucket) + 300 AS t_mean FROM buckets
),

fits AS (
    SELECT
        *,
        regr_slope(mean, t_mean) OVER previous_6h AS slope,
        regr_intercept(mean, t_mean) OVER previous_6h AS intercept,
        sum(n * var) OVER previous_6h / nullif(sum(n) OVER previous_6h - count(*) OVER previous_6h, 0) AS noise_var,
        count(*) OVER previous_6h AS fit_buckets
    FROM timed
    WHERE n > 0
    WINDOW previous_6h AS (
        PARTITION BY robot_id, axis ORDER BY bucket
        RANGE BETWEEN INTERVAL 6 HOURS PRECEDING AND INTERVAL 10 MINUTES PRECEDING
    )
),

final AS (
    SELECT
        robot_id,
        axis,
        bucket,
        CAST(samples AS INTEGER) AS samples,
        CAST(n AS INTEGER) AS moving_samples,
        mean,
        intercept + slope * t_mean AS expected,
        sqrt(noise_var) AS sigma,
        slope * 86400 AS slope_per_day,
        slope,
        intercept,
        CAST(fit_buckets AS INTEGER) AS fit_buckets,
        CAST(bucket AS DATE) AS part_date
    FROM fits
)

SELECT * FROM final
