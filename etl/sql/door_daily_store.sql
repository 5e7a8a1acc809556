-- door_daily_store: one row per store per local date; partial and incomplete days are
-- marked and left out of comparisons, as in door_daily_sensor.
WITH days AS (
    SELECT
        store,
        local_date,
        any_value(weekday) AS weekday,
        CAST(sum(visits) AS BIGINT) AS visits,
        CAST(sum(failed_readings) AS INTEGER) AS failed_readings,
        bool_or(partial) AS partial,
        count(*) AS doors_reporting
    FROM door_daily_sensor
    GROUP BY store, local_date
),

comparable AS (
    SELECT
        *,
        failed_readings > 0 AS incomplete,
        CASE WHEN NOT partial AND failed_readings = 0 THEN visits END AS whole_visits
    FROM days
),

baselines AS (
    SELECT
        *,
        avg(whole_visits) OVER same_weekday_before AS running_mean,
        count(whole_visits) OVER same_weekday_before AS baseline_periods,
        avg(visits) OVER original AS avg_count_4days
    FROM comparable
    -- Ordered by the day's number (see door_hourly_sensor): the two windows share one sort.
    WINDOW
        same_weekday_before AS (
            PARTITION BY store, weekday ORDER BY local_date - DATE '1970-01-01'
            RANGE BETWEEN 7 * $baseline_weeks PRECEDING AND 1 PRECEDING
        ),
        original AS (
            PARTITION BY store, weekday ORDER BY local_date - DATE '1970-01-01'
            ROWS BETWEEN 3 PRECEDING AND CURRENT ROW
        )
),

final AS (
    SELECT
        store,
        local_date,
        weekday,
        visits,
        failed_readings,
        doors_reporting,
        partial,
        incomplete,
        running_mean,
        baseline_periods,
        avg_count_4days,
        CASE WHEN running_mean > 0 THEN 100 * (whole_visits - running_mean) / running_mean END AS perc_diff,
        local_date AS part_date
    FROM baselines
)

SELECT * FROM final
