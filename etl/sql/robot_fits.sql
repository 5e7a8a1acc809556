-- robot_fits: per robot, axis and 10-minute bucket, the axis's moving samples (an axis
-- reads exactly 0 at rest, so rests are left out: regressing through them would make the
-- duty cycle, not the signal, the residual) and the straight line fitted by least squares
-- through the bucket means of the previous 6 hours. `sigma` is the readings' scatter around
-- that trend (pooled within-bucket standard deviation): the unit of ALERT and ERROR.
--
-- The line comes from sufficient statistics: the sums of x, x², y and xy over the 36 buckets
-- before each one give the least-squares line exactly. Plain sums over a ROWS frame are the
-- cheap window in DuckDB; regr_slope/regr_intercept over a RANGE frame took twice as long,
-- plain sums over a RANGE frame ten times (a dense grid of buckets makes ROWS mean time).
WITH wide AS (
    SELECT
        robot_id,
        -- 10-minute buckets counted since 1970: integer keys group faster than time_bucket
        epoch_us(ts) // 600000000 AS bucket_no,
        count(*) AS samples,
        count(nullif(COLUMNS('^axis\d$'), 0)) AS 'n_\0',
        avg(nullif(COLUMNS('^axis\d$'), 0)) AS 'y_\0',
        var_pop(nullif(COLUMNS('^axis\d$'), 0)) AS 'v_\0'
    FROM raw_robots
    GROUP BY robot_id, bucket_no
),

grid AS (
    -- Every bucket from each robot's first to its last, with or without data, so that a frame
    -- of 36 rows is exactly 6 hours even across a gap in the data.
    SELECT robot_id, unnest(range(min(bucket_no), max(bucket_no) + 1)) AS bucket_no
    FROM wide
    GROUP BY robot_id
),

buckets AS (
    -- INCLUDE NULLS keeps the buckets without data (UNPIVOT drops rows with a null by default)
    SELECT *
    FROM (SELECT * FROM grid LEFT JOIN wide USING (robot_id, bucket_no))
    UNPIVOT INCLUDE NULLS ((n, mean, var) FOR axis IN (
        (n_axis1, y_axis1, v_axis1) AS axis1, (n_axis2, y_axis2, v_axis2) AS axis2,
        (n_axis3, y_axis3, v_axis3) AS axis3, (n_axis4, y_axis4, v_axis4) AS axis4,
        (n_axis5, y_axis5, v_axis5) AS axis5, (n_axis6, y_axis6, v_axis6) AS axis6,
        (n_axis7, y_axis7, v_axis7) AS axis7, (n_axis8, y_axis8, v_axis8) AS axis8
    ))
),

terms AS (
    -- x: the bucket's midpoint (its moving samples spread evenly through it) in 5-minute steps
    -- since 2020-01-01 (bucket 2629728): x = epoch / 300 - 2 * 2629728. Whole numbers, so the
    -- sums of x and x² are exact (regressing on epoch seconds loses digits to cancellation).
    SELECT *, x * x AS xx, x * mean AS xy, n * var AS m2
    FROM (SELECT *, CASE WHEN n > 0 THEN 2.0 * (bucket_no - 2629728) + 1 END AS x FROM buckets)
),

sums AS (
    -- Buckets without moving samples have null terms: sums skip them, count(mean) too.
    SELECT
        *,
        count(mean) OVER previous_6h AS k,
        sum(x) OVER previous_6h AS sx,
        sum(xx) OVER previous_6h AS sxx,
        sum(mean) OVER previous_6h AS sy,
        sum(xy) OVER previous_6h AS sxy,
        sum(m2) OVER previous_6h AS sm2,
        sum(n) OVER previous_6h AS sn
    FROM terms
    WINDOW previous_6h AS (PARTITION BY robot_id, axis ORDER BY bucket_no ROWS BETWEEN 36 PRECEDING AND 1 PRECEDING)
),

fits AS (
    SELECT
        *,
        (k * sxy - sx * sy) / nullif(k * sxx - sx * sx, 0) AS b,  -- slope per 5 minutes
        sm2 / nullif(sn - k, 0) AS noise_var
    FROM sums
    WHERE n > 0
),

final AS (
    SELECT
        robot_id,
        axis,
        to_timestamp(bucket_no * 600) AS bucket,
        CAST(samples AS INTEGER) AS samples,
        CAST(n AS INTEGER) AS moving_samples,
        mean,
        (sy - b * sx) / k + b * x AS expected,
        sqrt(noise_var) AS sigma,
        b / 300 * 86400 AS slope_per_day,
        b / 300 AS slope,
        (sy - b * sx) / k - b * 2 * 2629728 AS intercept,  -- the line at the epoch (x = -2 * 2629728)
        CAST(k AS INTEGER) AS fit_buckets,
        sqrt(var) AS std,
        CAST(to_timestamp(bucket_no * 600) AS DATE) AS part_date
    FROM fits
)

SELECT * FROM final
