-- robot_maintenance: per robot, axis and day, the wear trend and when it reaches the ERROR
-- band. The trend is the least-squares line through the bucket means of the last
-- $maintenance_days days; the healthy level is the axis's reference mean (the maker's figure
-- over whole days, rests included) divided by the share of samples in which it moves; the
-- ERROR band starts 4 sigma above it. "Maintenance due in N days" is when the line gets there.
WITH buckets AS (
    SELECT
        robot_id,
        axis,
        CAST(bucket AS DATE) AS day,
        (epoch(bucket) - epoch(TIMESTAMPTZ '2020-01-01 00:00:00+00')) / 86400 AS x,  -- days, near 0
        mean AS y,
        moving_samples,
        samples,
        sigma
    FROM robot_fits
),

-- Every floating sum adds its terms in a fixed order (ORDER BY in the aggregate): an increment
-- holds robot_fits' rows in another order than a rebuild (its earlier days are appended from the
-- files), and a window's segment tree groups a frame's days by their place in the partition, so
-- plain sums and window sums differed in the last bits, which the slope's cancellation made
-- differences of 1e-9 in 2 % of the rows: an increment must write what a rebuild writes, bit for bit.
per_day AS (
    SELECT
        robot_id,
        axis,
        day,
        count(*) AS n,
        sum(x ORDER BY x) AS sx,
        sum(y ORDER BY x) AS sy,
        sum(x * x ORDER BY x) AS sxx,
        sum(x * y ORDER BY x) AS sxy,
        max(x) AS x_end,
        sum(moving_samples) / sum(samples) AS duty,
        median(sigma) AS sigma
    FROM buckets
    GROUP BY robot_id, axis, day
),

-- the trailing $maintenance_days days of each day, by a join (a window's sums are not ordered)
trends AS (
    SELECT
        d.*,
        sum(r.n) AS tn,
        sum(r.sx ORDER BY r.day) AS tsx,
        sum(r.sy ORDER BY r.day) AS tsy,
        sum(r.sxx ORDER BY r.day) AS tsxx,
        sum(r.sxy ORDER BY r.day) AS tsxy,
        count(*) AS days_fitted
    FROM per_day AS d
    INNER JOIN per_day AS r
        ON
            r.robot_id = d.robot_id
            AND r.axis = d.axis
            AND r.day BETWEEN d.day - to_days($maintenance_days - 1) AND d.day
    GROUP BY ALL
),

fitted AS (
    SELECT
        t.*,
        (tn * tsxy - tsx * tsy) / nullif(tn * tsxx - tsx * tsx, 0) AS slope,
        r.reference_mean / nullif(t.duty, 0) AS healthy_level
    FROM trends AS t
    LEFT JOIN robot_axes AS r ON r.robot_id = t.robot_id AND r.axis = t.axis
),

levels AS (
    SELECT
        *,
        (tsy - slope * tsx) / tn + slope * x_end AS level_now,
        healthy_level + 4 * sigma AS error_level
    FROM fitted
),

final AS (
    SELECT
        robot_id,
        axis,
        day AS date,
        level_now,
        healthy_level,
        sigma,
        (level_now - healthy_level) / sigma AS wear_sigmas,
        slope / sigma AS wear_sigmas_per_day,
        CAST(days_fitted AS INTEGER) AS days_fitted,
        CASE
            WHEN days_fitted < 3 THEN NULL
            WHEN level_now >= error_level THEN 0.0
            WHEN slope / sigma >= $maintenance_min_slope THEN (error_level - level_now) / slope
        END AS days_to_error,
        CASE
            WHEN healthy_level IS NULL THEN 'no reference level'
            WHEN days_fitted < 3 THEN 'not enough history'
            WHEN level_now >= error_level THEN 'in the ERROR band: maintenance due now'
            WHEN slope / sigma >= $maintenance_min_slope
                THEN 'maintenance due in ' || CAST(ceil((error_level - level_now) / slope) AS INTEGER) || ' days'
            ELSE 'no wear trend'
        END AS status,
        day AS part_date
    FROM levels
)

SELECT * FROM final
