-- door_hourly_sensor: one row per door per UTC hour, in the store's local calendar, with
-- the mean of the same weekday and hour over the previous $baseline_weeks weeks.
-- A failed reading is null: never summed as 0, never part of a mean.
-- Columns named _* are the run's working columns, never written (etl/marts.py): here the
-- slot's $anomaly_weeks weeks of history that door_anomalies judges an hour by (helpers/
-- slot_history.sql), taken in the same window as the baseline (one sort of the readings by
-- slot, not a second one there).
WITH readings AS (
    SELECT
        r.ts,
        r.store,
        r.sensor_id,
        r.count AS visits,
        timezone(s.timezone, r.ts) AS local_ts
    FROM raw_doors AS r
    JOIN stores AS s ON s.name = r.store
),

written_weekdays AS (
    -- A run writes only its own dates (from $first_date), and a baseline looks at the same
    -- weekday only: the windows run over those weekdays' rows (an hourly increment: 2 of 7).
    -- The look-back's rows of other weekdays, which later tables sum, get no baseline; they
    -- are never written, since every written row's weekday is in this list.
    SELECT DISTINCT isodow(local_ts) AS weekday FROM readings WHERE ts >= $first_date
),

-- Not materialised, though two steps read it: the second (the weekdays not written) keeps no row
-- of a full run and a few of an increment's, and writing out a month's chunk with its look-back
-- (8.4 M rows at 100 x the doors) cost more than reading it twice (6.4 -> 5.9 s).
calendar AS NOT MATERIALIZED (
    SELECT
        *,
        CAST(local_ts AS DATE) AS local_date,
        hour(local_ts) AS local_hour,
        isodow(local_ts) AS weekday  -- 1 = Monday .. 7 = Sunday
    FROM readings
    UNION ALL
    -- A chunk's look-back as the files written before it hold it (the same rows as computing them
    -- again from raw readings; see transform.door_history): raw_doors then holds only the chunk's
    -- own dates. Empty otherwise. Past the doors' health windows of 30 days (32 with a margin for
    -- local dates), every window looks at the same weekday only: older weeks' other weekdays go.
    SELECT ts, store, sensor_id, visits, NULL, local_date, local_hour, weekday
    FROM door_hourly_history
    WHERE local_date >= $first_date - 32 OR weekday IN (SELECT weekday FROM written_weekdays)
),

slot_history AS (
    -- One list of the slot's earlier visits (its mean and count are taken from it below) and
    -- three lags, not three framed aggregates: DuckDB builds a segment tree per framed aggregate.
    SELECT
        *,
        -- Matched by calendar: the same weekday and hour 1..N weeks back, whatever rows exist.
        list(visits) OVER same_slot_before AS slot_before,
        list(visits) OVER anomaly_slot_before AS anomaly_before,
        -- The original's mean: 4 rows including the current one (kept for continuity).
        lag(visits, 1) OVER slot AS visits_1,
        lag(visits, 2) OVER slot AS visits_2,
        lag(visits, 3) OVER slot AS visits_3
    FROM calendar
    WHERE weekday IN (SELECT weekday FROM written_weekdays)
    -- Both ordered by the day's number, not the date: a date frame by days orders by the date
    -- cast to a timestamp, which is a second sort of the same rows. A look-back row's frame is
    -- empty (its baseline is never written, nor read): a chunk of a month holds two months of
    -- look-back, whose lists took a third of its windows' time.
    WINDOW
        slot AS (PARTITION BY store, sensor_id, weekday, local_hour ORDER BY local_date - DATE '1970-01-01'),
        same_slot_before AS (
            PARTITION BY store, sensor_id, weekday, local_hour ORDER BY local_date - DATE '1970-01-01'
            RANGE BETWEEN (CASE WHEN local_date >= $first_date - 1 THEN 7 * $baseline_weeks ELSE 0 END) PRECEDING
                AND 1 PRECEDING
        ),
        anomaly_slot_before AS (
            PARTITION BY store, sensor_id, weekday, local_hour ORDER BY local_date - DATE '1970-01-01'
            RANGE BETWEEN (CASE WHEN local_date >= $first_date - 1 THEN 7 * $anomaly_weeks ELSE 0 END) PRECEDING
                AND 1 PRECEDING
        )
),

baselines AS (
    SELECT
        * EXCLUDE (slot_before, anomaly_before, visits_1, visits_2, visits_3),
        list_avg(slot_before) AS running_mean,
        coalesce(list_count(slot_before), 0) AS baseline_periods,
        list_avg([visits_3, visits_2, visits_1, visits]) AS avg_count_4days,
        slot_history(anomaly_before) AS _slot_history
    FROM slot_history
    UNION ALL
    SELECT *, NULL AS running_mean, NULL AS baseline_periods, NULL AS avg_count_4days, NULL AS _slot_history
    FROM calendar
    WHERE weekday NOT IN (SELECT weekday FROM written_weekdays)
),

final AS (
    SELECT
        ts,
        store,
        sensor_id,
        local_date,
        local_hour,
        weekday,
        visits,
        CAST(visits IS NULL AS INTEGER) AS failed_readings,
        running_mean,
        baseline_periods,
        avg_count_4days,
        CASE WHEN running_mean > 0 THEN 100 * (visits - running_mean) / running_mean END AS perc_diff,
        CAST(ts AS DATE) AS part_date,
        _slot_history
    FROM baselines
)

SELECT * FROM final
