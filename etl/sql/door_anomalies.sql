-- door_anomalies: hours and days whose visits leave their weekday(-hour) baseline by more
-- than $anomaly_k robust sigmas (median and MAD of the previous $anomaly_weeks weeks) and
-- by at least $anomaly_min_change of the median. Failed, partial and incomplete readings
-- are neither judged nor part of a baseline.
WITH judged_weekdays AS (
    -- Only the run's own dates are written, and a baseline looks at the same weekday only: the
    -- other weekdays' rows are left out before the windows (an hourly increment then computes
    -- 2 weekdays' windows, not 7; a full run, all of them).
    SELECT DISTINCT weekday FROM door_daily_sensor WHERE local_date >= $first_date
),

hourly_sensor AS (
    SELECT
        'hour' AS resolution, 'sensor' AS grain, store, sensor_id, ts, local_date, local_hour, visits,
        median(visits) OVER w AS baseline,
        1.4826 * mad(visits) OVER w AS spread,
        count(visits) OVER w AS periods
    FROM door_hourly_sensor
    WHERE weekday IN (SELECT weekday FROM judged_weekdays)
    WINDOW w AS (
        PARTITION BY store, sensor_id, weekday, local_hour ORDER BY local_date
        RANGE BETWEEN to_days(7 * $anomaly_weeks) PRECEDING AND INTERVAL 1 DAY PRECEDING
    )
),

hourly_store AS (
    SELECT
        'hour' AS resolution, 'store' AS grain, store, NULL AS sensor_id, ts, local_date, local_hour,
        CASE WHEN NOT incomplete THEN visits END AS visits,
        median(CASE WHEN NOT incomplete THEN visits END) OVER w AS baseline,
        1.4826 * mad(CASE WHEN NOT incomplete THEN visits END) OVER w AS spread,
        count(CASE WHEN NOT incomplete THEN visits END) OVER w AS periods
    FROM door_hourly_store
    WHERE weekday IN (SELECT weekday FROM judged_weekdays)
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
    WHERE weekday IN (SELECT weekday FROM judged_weekdays)
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
    WHERE weekday IN (SELECT weekday FROM judged_weekdays)
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
