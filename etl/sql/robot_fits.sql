-- robot_fits: per robot, axis and 10-minute bucket, the axis's moving samples (an axis
-- reads exactly 0 at rest, so rests are left out: regressing through them would make the
-- duty cycle, not the signal, the residual) and the straight line fitted by least squares
-- through the bucket means of the previous 6 hours. `sigma` is the readings' scatter around
-- that trend (pooled within-bucket standard deviation): the unit of ALERT and ERROR.
--
-- The line comes from sufficient statistics: the sums of x, x², y and xy over the 36 buckets
-- before each one give the least-squares line exactly. `robot_bucket_sums` holds them, one
-- row per robot, axis and bucket with moving samples: the bucket aggregates of
-- sql/helpers/robot_buckets.sql plus their trailing sums over the 36 buckets before, in
-- time (buckets without moving samples count for nothing), which etl/transform.py adds in
-- numpy (DuckDB's window sums over a dense bucket grid took 90 % of this table's time).
--   x: the bucket's midpoint (its moving samples spread evenly through it) in 5-minute steps
--      since 2020-01-01 (bucket 2629728): x = epoch / 300 - 2 * 2629728. Whole numbers, so the
--      sums of x and x² are exact (regressing on epoch seconds loses digits to cancellation).
--   k, sx, sxx, sy, sxy: the count of earlier buckets with moving samples, the sums of their
--      x, x², means and x * mean; sm2, sn: the sums of their n * variance and of their n.
WITH fits AS (
    SELECT
        *,
        (k * sxy - sx * sy) / nullif(k * sxx - sx * sx, 0) AS b,  -- slope per 5 minutes
        sm2 / nullif(sn - k, 0) AS noise_var
    FROM robot_bucket_sums
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
