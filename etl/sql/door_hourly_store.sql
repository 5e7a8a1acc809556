-- door_hourly_store: one row per store per UTC hour. A total with a failed door is marked
-- incomplete and never compared: its sum would count the failed door as 0.
WITH totals AS (
    SELECT
        ts,
        store,
        any_value(local_date) AS local_date,
        any_value(local_hour) AS local_hour,
        any_value(weekday) AS weekday,
        CAST(sum(visits) AS BIGINT) AS visits,
        CAST(sum(failed_readings) AS INTEGER) AS failed_readings,
        count(*) AS doors_reporting
    FROM door_hourly_sensor
    GROUP BY ts, store
),

comparable AS (
    SELECT
        *,
        failed_readings > 0 AS incomplete,
        CASE WHEN failed_readings = 0 THEN visits END AS complete_visits
    FROM totals
),

baselines AS (
    SELECT
        *,
        avg(complete_visits) OVER same_slot_before AS running_mean,
        count(complete_visits) OVER same_slot_before AS baseline_periods,
        avg(visits) OVER original AS avg_count_4days,
        -- The slot's history door_anomalies judges a store's hour by (see door_hourly_sensor)
        list(complete_visits) OVER anomaly_slot_before AS anomaly_before
    FROM comparable
    -- Ordered by the day's number (see door_hourly_sensor): the two windows share one sort.
    WINDOW
        same_slot_before AS (
            PARTITION BY store, weekday, local_hour ORDER BY local_date - DATE '1970-01-01'
            RANGE BETWEEN 7 * $baseline_weeks PRECEDING AND 1 PRECEDING
        ),
        original AS (
            PARTITION BY store, weekday, local_hour ORDER BY local_date - DATE '1970-01-01'
            ROWS BETWEEN 3 PRECEDING AND CURRENT ROW
        ),
        anomaly_slot_before AS (
            PARTITION BY store, weekday, local_hour ORDER BY local_date - DATE '1970-01-01'
            RANGE BETWEEN 7 * $anomaly_weeks PRECEDING AND 1 PRECEDING
        )
),

final AS (
    SELECT
        ts,
        store,
        local_date,
        local_hour,
        weekday,
        visits,
        failed_readings,
        doors_reporting,
        incomplete,
        running_mean,
        baseline_periods,
        avg_count_4days,
        CASE WHEN running_mean > 0 THEN 100 * (complete_visits - running_mean) / running_mean END AS perc_diff,
        CAST(ts AS DATE) AS part_date,
        slot_history(anomaly_before) AS _slot_history
    FROM baselines
)

SELECT * FROM final
