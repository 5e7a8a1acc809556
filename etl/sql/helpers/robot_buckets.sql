-- robot_buckets (a helper, not a mart: etl/transform.py runs it before robot_fits and adds the
-- trailing 6-hour sums in numpy): per robot and 10-minute bucket, the samples, and per axis
-- the moving samples' count, mean and variance (an axis reads exactly 0 at rest: rests are
-- left out). One row per robot and bucket with data, 8 axes wide.
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
-- in a fixed order (threads finish groups in any): every later sum then adds the same numbers
-- in the same order, and a rebuild writes the same bits (robot_maintenance's sums differed in
-- the 10th digit from run to run)
ORDER BY robot_id, bucket_no
