-- door_health: per door and local date, failure rates over the trailing 7 and 30 days,
-- their trend (this week against the week before), a replacement warning, and whether the
-- door's share of its store's traffic is far below its siblings' (underused).
WITH daily AS (
    SELECT store, sensor_id, local_date, visits, failed_readings, hours
    FROM door_daily_sensor
),

rates AS (
    SELECT
        *,
        sum(failed_readings) OVER last_7 / sum(hours) OVER last_7 AS failure_rate_7d,
        sum(failed_readings) OVER last_30 / sum(hours) OVER last_30 AS failure_rate_30d,
        sum(hours) OVER last_30 AS hours_30d,
        sum(failed_readings) OVER week_before / nullif(sum(hours) OVER week_before, 0) AS failure_rate_prev_7d,
        sum(visits) OVER last_30 AS visits_30d
    FROM daily
    WINDOW
        last_7 AS (PARTITION BY store, sensor_id ORDER BY local_date RANGE BETWEEN INTERVAL 6 DAYS PRECEDING AND CURRENT ROW),
        last_30 AS (PARTITION BY store, sensor_id ORDER BY local_date RANGE BETWEEN INTERVAL 29 DAYS PRECEDING AND CURRENT ROW),
        week_before AS (
            PARTITION BY store, sensor_id ORDER BY local_date
            RANGE BETWEEN INTERVAL 13 DAYS PRECEDING AND INTERVAL 7 DAYS PRECEDING
        )
),

shares AS (
    SELECT
        *,
        visits_30d / nullif(sum(visits_30d) OVER same_day, 0) AS traffic_share,
        count(*) OVER same_day AS doors
    FROM rates
    WINDOW same_day AS (PARTITION BY store, local_date)
),

siblings AS (
    SELECT *, median(traffic_share) OVER (PARTITION BY store, local_date) AS median_share
    FROM shares
),

final AS (
    SELECT
        store,
        sensor_id,
        local_date,
        failure_rate_7d,
        failure_rate_30d,
        failure_rate_7d - failure_rate_prev_7d AS failure_trend,
        hours_30d,
        -- A rate over a few hours says little: one failed hour of a new lake would be 100 %.
        failure_rate_30d > $health_failure_rate AND hours_30d >= $health_min_hours AS replacement_warning,
        traffic_share,
        median_share,
        doors > 1 AND traffic_share < $underused_ratio * median_share AS underused,
        local_date AS part_date
    FROM siblings
)

SELECT * FROM final
