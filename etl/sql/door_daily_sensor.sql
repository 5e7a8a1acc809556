-- door_daily_sensor: one row per door per local date. A day with fewer hours than its
-- calendar has (23, 24 or 25 around DST) is partial; a day with a failed hour is
-- incomplete; neither is compared with whole days nor feeds their baseline.
WITH days AS (
    SELECT
        store,
        sensor_id,
        local_date,
        any_value(weekday) AS weekday,
        CAST(sum(visits) AS BIGINT) AS visits,
        CAST(sum(failed_readings) AS INTEGER) AS failed_readings,
        count(*) AS hours
    FROM door_hourly_sensor
    GROUP BY store, sensor_id, local_date
),

lengths AS (
    SELECT
        d.*,
        CAST(
            epoch(timezone(s.timezone, CAST(d.local_date + 1 AS TIMESTAMP)) - timezone(s.timezone, CAST(d.local_date AS TIMESTAMP)))
            / 3600 AS INTEGER
        ) AS hours_in_day
    FROM days AS d
    JOIN stores AS s ON s.name = d.store
),

comparable AS (
    SELECT
        *,
        hours < hours_in_day AS partial,
        failed_readings > 0 AS incomplete,
        CASE WHEN hours = hours_in_day AND failed_readings = 0 THEN visits END AS whole_visits
    FROM lengths
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
            PARTITION BY store, sensor_id, weekday ORDER BY local_date - DATE '1970-01-01'
            RANGE BETWEEN 7 * $baseline_weeks PRECEDING AND 1 PRECEDING
        ),
        original AS (
            PARTITION BY store, sensor_id, weekday ORDER BY local_date - DATE '1970-01-01'
            ROWS BETWEEN 3 PRECEDING AND CURRENT ROW
        )
),

final AS (
    SELECT
        store,
        sensor_id,
        local_date,
        weekday,
        visits,
        failed_readings,
        hours,
        hours_in_day,
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
