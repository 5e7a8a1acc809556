-- door_anomalies: hours and days whose visits leave their weekday(-hour) baseline by more
-- than $anomaly_k robust sigmas (median and MAD of the previous $anomaly_weeks weeks) and
-- by at least $anomaly_min_change of the median. Failed, partial and incomplete readings
-- are neither judged nor part of a baseline.
WITH hourly_sensor AS (
    -- The largest input (every door-hour of the look-back), and only the run's own dates are
    -- written: a join to the same weekday and hour of the previous weeks judges just those rows,
    -- where a window would compute a baseline for every row of the look-back (an hourly
    -- increment: 2 days judged instead of 59). Same frame as the windows below.
    SELECT
        'hour' AS resolution, 'sensor' AS grain, t.store, t.sensor_id, t.ts, t.local_date, t.local_hour, t.visits,
        median(h.visits) AS baseline,
        1.4826 * mad(h.visits) AS spread,
        count(h.visits) AS periods
    FROM door_hourly_sensor AS t
    LEFT JOIN door_hourly_sensor AS h
        ON h.store = t.store AND h.sensor_id = t.sensor_id AND h.weekday = t.weekday AND h.local_hour = t.local_hour
        AND h.local_date BETWEEN t.local_date - to_days(7 * $anomaly_weeks) AND t.local_date - INTERVAL 1 DAY
    WHERE t.local_date >= $first_date
    GROUP BY t.store, t.sensor_id, t.ts, t.local_date, t.local_hour, t.visits
),

hourly_store AS (
    SELECT
        'hour' AS resolution, 'store' AS grain, store, NULL AS sensor_id, ts, local_date, local_hour,
        CASE WHEN NOT incomplete THEN visits END AS visits,
        median(CASE WHEN NOT incomplete THEN visits END) OVER w AS baseline,
        1.4826 * mad(CASE WHEN NOT incomplete THEN visits END) OVER w AS spread,
        count(CASE WHEN NOT incomplete THEN visits END) OVER w AS periods
    FROM door_hourly_store
    WINDOW w AS (
        PARTITION BY store, weekday, local_hour ORDER BY local_date
        RANGE BETWEEN to_days(7 * $anomaly_weeks) PRECEDING AND INTERVAL 1 DAY PRECEDING
    )
),

daily_sensor AS (
    SELECT
        'day' AS resolution, 'sensor' AS grain, store, sensor_id,
        timezone(s.timezone, CAST(local_date AS TIMESTAMP)) AS ts, local_date, NULL AS local_hour,
        CASE WHEN NOT partial AND NOT incomplete THEN visits END AS visits,
        median(CASE WHEN NOT partial AND NOT incomplete THEN visits END) OVER w AS baseline,
        1.4826 * mad(CASE WHEN NOT partial AND NOT incomplete THEN visits END) OVER w AS spread,
        count(CASE WHEN NOT partial AND NOT incomplete THEN visits END) OVER w AS periods
    FROM door_daily_sensor
    JOIN stores AS s ON s.name = store
    WINDOW w AS (
        PARTITION BY store, sensor_id, weekday ORDER BY local_date
        RANGE BETWEEN to_days(7 * $anomaly_weeks) PRECEDING AND INTERVAL 1 DAY PRECEDING
    )
),

daily_store AS (
    SELECT
        'day' AS resolution, 'store' AS grain, store, NULL AS sensor_id,
        timezone(s.timezone, CAST(local_date AS TIMESTAMP)) AS ts, local_date, NULL AS local_hour,
        CASE WHEN NOT partial AND NOT incomplete THEN visits END AS visits,
        median(CASE WHEN NOT partial AND NOT incomplete THEN visits END) OVER w AS baseline,
        1.4826 * mad(CASE WHEN NOT partial AND NOT incomplete THEN visits END) OVER w AS spread,
        count(CASE WHEN NOT partial AND NOT incomplete THEN visits END) OVER w AS periods
    FROM door_daily_store
    JOIN stores AS s ON s.name = store
    WINDOW w AS (
        PARTITION BY store, weekday ORDER BY local_date
        RANGE BETWEEN to_days(7 * $anomaly_weeks) PRECEDING AND INTERVAL 1 DAY PRECEDING
    )
),

candidates AS (
    SELECT * FROM hourly_sensor
    UNION ALL SELECT * FROM hourly_store
    UNION ALL SELECT * FROM daily_sensor
    UNION ALL SELECT * FROM daily_store
),

scored AS (
    SELECT
        *,
        -- A MAD of a few values can be near 0 by chance: floor the scale at 5 % of the
        -- baseline (the counters' noise is 15 %) and one visit.
        (visits - baseline) / greatest(spread, 0.05 * baseline, 1.0) AS score,
        visits / baseline - 1 AS change
    FROM candidates
    WHERE visits IS NOT NULL AND baseline > 0 AND periods >= 3
),

final AS (
    SELECT
        resolution,
        grain,
        store,
        CAST(sensor_id AS INTEGER) AS sensor_id,
        ts,
        local_date,
        CAST(local_hour AS BIGINT) AS local_hour,
        visits,
        baseline,
        score,
        change,
        CASE WHEN score < 0 THEN 'low' ELSE 'high' END AS direction,
        CASE WHEN abs(score) > 2 * $anomaly_k THEN 'critical' ELSE 'warning' END AS level,
        local_date AS part_date
    FROM scored
    WHERE abs(score) > $anomaly_k AND abs(change) >= $anomaly_min_change
)

SELECT * FROM final
