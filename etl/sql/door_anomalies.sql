-- door_anomalies: hours and days whose visits are improbable under a count model of their
-- weekday(-hour) history. The baseline is the trimmed mean of the same weekday and hour over
-- the previous $anomaly_weeks weeks; the variance of a sum of M expected visits is
-- (phi M + a M^2) (1 + 1/n): phi the hours' variance-to-mean ratio pooled over the day's
-- slots (1 = Poisson), a the day-to-day dispersion from the same weekday's whole days (robust
-- MAD), n the weeks of history. An hour is judged on trailing windows of 1, 2 and 4 hours of
-- its local day; a window scores by the Wilson-Hilferty normal equivalent of its Poisson tail
-- probability at that variance, and counts only when it moved by $anomaly_min_change and
-- $anomaly_min_visits and the hour itself moved the same way by $anomaly_min_change. A
-- flagged hour beyond $anomaly_z (the false-alarm budget, see TransformParams) joins the run
-- of flagged hours before it on the same local day into one event (event_id). Failed,
-- partial and incomplete readings are neither judged nor part of a baseline.
WITH judged_weekdays AS (
    -- Only the run's own dates are written, and every window looks at the same weekday or the
    -- same local day only: the other weekdays' rows are left out before the windows (an hourly
    -- increment then computes 2 weekdays' windows, not 7; a full run, all of them).
    SELECT DISTINCT weekday FROM door_daily_sensor WHERE local_date >= $first_date
),

hour_history AS NOT MATERIALIZED (
    -- Doors and store totals side by side: one scoring for both grains. A slot's history (the
    -- same weekday and hour over $anomaly_weeks weeks: its count, sum, extremes, sum of squares
    -- and variance; helpers/slot_history.sql) comes from door_hourly_sensor and
    -- door_hourly_store, which take it in the window of their own baselines. Only the run's own
    -- dates: the look-back's rows were the history, and every later step looks at one local day
    -- (an increment scores 1 day of 9).
    SELECT 'sensor' AS grain, store, sensor_id, ts, local_date, local_hour, weekday, visits, _slot_history.*
    FROM door_hourly_sensor
    WHERE local_date >= $first_date AND weekday IN (SELECT weekday FROM judged_weekdays)
    UNION ALL
    -- sensor_id -1 stands for the store (joins on NULL never match); final turns it back to NULL.
    SELECT 'store', store, -1, ts, local_date, local_hour, weekday, CASE WHEN NOT incomplete THEN visits END,
           _slot_history.*
    FROM door_hourly_store
    WHERE local_date >= $first_date AND weekday IN (SELECT weekday FROM judged_weekdays)
),

-- Not materialised, though two steps read it (hour_dispersion, hour_judged): DuckDB writes a CTE
-- read twice out in full, which cost more than taking the hours' scan and sums twice (a year of
-- the default fleet: 0.30 -> 0.27 s; a month of 100 x the doors: 2.87 -> 2.34 s).
hour_baselines AS NOT MATERIALIZED (
    SELECT
        *,
        -- Trimmed: one past burst or closed day per slot does not move the baseline.
        CASE
            WHEN periods >= 5 THEN (total - highest - lowest) / (periods - 2)
            WHEN periods > 0 THEN total / periods
        END AS baseline,
        -- The variance of the trimmed values too, over what trimming 1 of n at each end leaves of
        -- a normal's variance (0.36, 0.41, 0.45, 0.48 for n = 5 .. 8, simulated; beyond, towards 1).
        CASE
            WHEN periods >= 5 THEN
                ((total_squares - highest * highest - lowest * lowest)
                 - (total - highest - lowest) * (total - highest - lowest) / (periods - 2)) / (periods - 3)
                / CASE periods WHEN 5 THEN 0.36 WHEN 6 THEN 0.41 WHEN 7 THEN 0.45 WHEN 8 THEN 0.48
                    ELSE 1.0 - 4.2 / periods END
            ELSE plain_var
        END AS slot_var,
        visits IS NOT NULL AND periods >= $anomaly_min_periods AS judged
    FROM hour_history
),

hour_dispersion AS (
    -- b: a slot's variance over 8 weeks is m + b m^2 (b = 0: Poisson), pooled over the day's slots
    -- (a slot's own 8 values are too few); s2 = the sum of m^2 over the day, for the days' a below.
    SELECT
        grain, store, sensor_id, local_date,
        -- summed in time order: a sum of doubles in scan order differed in its last bits between
        -- runs over different spans (the transform's units), and so did the scores
        greatest(0.0, sum(slot_var - baseline ORDER BY ts) / sum(baseline * baseline ORDER BY ts)) AS b,
        sum(baseline * baseline ORDER BY ts) AS s2
    FROM hour_baselines
    WHERE periods >= 2 AND baseline > 0
    GROUP BY grain, store, sensor_id, local_date
),

days AS (
    SELECT 'sensor' AS grain, store, sensor_id, local_date, weekday,
           CASE WHEN NOT partial AND NOT incomplete THEN visits END AS visits
    FROM door_daily_sensor
    WHERE weekday IN (SELECT weekday FROM judged_weekdays)
    UNION ALL
    SELECT 'store', store, -1, local_date, weekday, CASE WHEN NOT partial AND NOT incomplete THEN visits END
    FROM door_daily_store
    WHERE weekday IN (SELECT weekday FROM judged_weekdays)
),

day_history AS (
    SELECT *
    FROM (
        SELECT
            *,
            count(visits) OVER w AS periods,
            sum(visits) OVER w AS total,
            max(visits) OVER w AS highest,
            min(visits) OVER w AS lowest,
            -- Robust: a past closed day or burst does not inflate the day-to-day spread.
            1.4826 * mad(visits) OVER w AS spread
        FROM days
        -- A look-back day's frame is empty: only the run's own days are kept (mad over two
        -- months of look-back days was most of this window's time in a month's chunk)
        WINDOW w AS (
            PARTITION BY grain, store, sensor_id, weekday ORDER BY local_date - DATE '1970-01-01'
            RANGE BETWEEN (CASE WHEN local_date >= $first_date THEN 7 * $anomaly_weeks ELSE 0 END) PRECEDING
                AND 1 PRECEDING
        )
    )
    WHERE local_date >= $first_date
),

day_model AS (
    SELECT
        d.*,
        CASE
            WHEN d.periods >= 5 THEN (d.total - d.highest - d.lowest) / (d.periods - 2)
            WHEN d.periods > 0 THEN d.total / d.periods
        END AS baseline,
        coalesce(h.b, 0.0) AS b,
        coalesce(h.s2, 0.0) AS s2
    FROM day_history AS d
    LEFT JOIN hour_dispersion AS h USING (grain, store, sensor_id, local_date)
),

day_dispersion AS (
    -- a: the part of b shared by a day's hours (weather, a holiday season: one factor for the
    -- day), from the days' robust spread: Var(day) = M + (b - a) s2 + a M^2. What is not shared
    -- is independent from hour to hour.
    SELECT
        *,
        CASE WHEN baseline * baseline > s2 THEN
            least(b, greatest(0.0, (spread * spread - baseline - b * s2) / (baseline * baseline - s2)))
        ELSE 0.0 END AS dispersion
    FROM day_model
),

hour_judged AS (
    -- What a window sums of an hour: its visits and baseline when judged.
    SELECT
        h.*,
        coalesce(p.b, 0.0) AS b,
        coalesce(d.dispersion, 0.0) AS dispersion,
        CASE WHEN h.judged THEN h.visits END AS jv,
        CASE WHEN h.judged THEN h.baseline END AS jb
    FROM hour_baselines AS h
    LEFT JOIN hour_dispersion AS p USING (grain, store, sensor_id, local_date)
    LEFT JOIN (SELECT grain, store, sensor_id, local_date, dispersion FROM day_dispersion) AS d
        USING (grain, store, sensor_id, local_date)
),

hour_before AS (
    -- The three rows before each hour of its door or store: a trailing window of 2 or 4 hours of
    -- the local day holds those of them on the same local day within 1 or 3 hours. Lags over a
    -- few long partitions, not frames over one partition per local day (14,000 a year, which
    -- took most of this query's time).
    SELECT
        *,
        lag(ts, 1) OVER o AS ts_1, lag(ts, 2) OVER o AS ts_2, lag(ts, 3) OVER o AS ts_3,
        lag(local_date, 1) OVER o AS date_1, lag(local_date, 2) OVER o AS date_2, lag(local_date, 3) OVER o AS date_3,
        lag(jv, 1) OVER o AS jv_1, lag(jv, 2) OVER o AS jv_2, lag(jv, 3) OVER o AS jv_3,
        lag(jb, 1) OVER o AS jb_1, lag(jb, 2) OVER o AS jb_2, lag(jb, 3) OVER o AS jb_3
    FROM hour_judged
    WINDOW o AS (PARTITION BY grain, store, sensor_id ORDER BY ts)
),

hour_in_windows AS (
    SELECT
        *,
        date_1 = local_date AND ts_1 >= ts - INTERVAL 1 HOUR AS in_2,
        date_1 = local_date AND ts_1 >= ts - INTERVAL 3 HOUR AS in_4_1,
        date_2 = local_date AND ts_2 >= ts - INTERVAL 3 HOUR AS in_4_2,
        date_3 = local_date AND ts_3 >= ts - INTERVAL 3 HOUR AS in_4_3
    FROM hour_before
),

hour_windows AS (
    -- Each window's sums in time order (a list's sum adds its values in order; nulls skipped).
    SELECT
        * EXCLUDE (ts_1, ts_2, ts_3, date_1, date_2, date_3, jv_1, jv_2, jv_3, jb_1, jb_2, jb_3,
                   in_2, in_4_1, in_4_2, in_4_3, jv, jb),
        list_sum([CASE WHEN in_2 THEN jb_1 * jb_1 END, jb * jb]) AS squares_2,
        list_sum([CASE WHEN in_4_3 THEN jb_3 * jb_3 END, CASE WHEN in_4_2 THEN jb_2 * jb_2 END,
                  CASE WHEN in_4_1 THEN jb_1 * jb_1 END, jb * jb]) AS squares_4,
        list_sum([CASE WHEN in_2 THEN jv_1 END, jv]) AS visits_2,
        list_sum([CASE WHEN in_2 THEN jb_1 END, jb]) AS baseline_2,
        list_sum([CASE WHEN in_4_3 THEN jv_3 END, CASE WHEN in_4_2 THEN jv_2 END,
                  CASE WHEN in_4_1 THEN jv_1 END, jv]) AS visits_4,
        list_sum([CASE WHEN in_4_3 THEN jb_3 END, CASE WHEN in_4_2 THEN jb_2 END,
                  CASE WHEN in_4_1 THEN jb_1 END, jb]) AS baseline_4
    FROM hour_in_windows
),

hour_tests AS (
    -- One row per hour and window: x visits against m expected, at variance v.
    SELECT
        'hour' AS resolution, grain, store, sensor_id, ts, local_date, local_hour, visits, baseline, periods,
        -- Var(window) = m + (b - a) sum(m_h^2) + a m^2: the day's shared part a, the rest hour by hour.
        window_hours, x, m, (m + (b - dispersion) * squares + dispersion * m * m) * (1.0 + 1.0 / periods) AS v,
        -- The hour itself moved the window's way (a window's old excess does not flag a later hour).
        abs(visits / baseline - 1.0) >= $anomaly_min_change AND sign(visits - baseline) = sign(x - m) AS own_moved
    FROM (
        SELECT *, UNNEST([1, 2, 4]) AS window_hours,
               UNNEST([visits, visits_2, visits_4]) AS x,
               UNNEST([baseline, baseline_2, baseline_4]) AS m,
               UNNEST([baseline * baseline, squares_2, squares_4]) AS squares
        FROM hour_windows
        WHERE judged AND baseline > 0
    )
),

day_tests AS (
    SELECT
        'day' AS resolution, grain, store, sensor_id,
        timezone(s.timezone, CAST(local_date AS TIMESTAMP)) AS ts, local_date, NULL AS local_hour,
        visits, baseline, periods, NULL AS window_hours, visits AS x, baseline AS m,
        -- A day's variance: the model's, or the days' own robust spread when larger.
        greatest(baseline + (b - dispersion) * s2 + dispersion * baseline * baseline, spread * spread)
            * (1.0 + 1.0 / periods) AS v,
        TRUE AS own_moved
    FROM day_dispersion
    JOIN stores AS s ON s.name = store
    WHERE visits IS NOT NULL AND baseline > 0 AND periods >= $anomaly_min_periods
),

tests AS (
    SELECT
        *,
        -- As a negative binomial of mean m and variance v: r = 1 / a, a = (v - m) / m^2.
        2.0 / greatest((v - m) / (m * m), 1e-9) AS d2,
        CASE WHEN x > m THEN 2.0 * x ELSE 2.0 * (x + 1) END AS d1,
        CASE WHEN x > m THEN m / x ELSE m / (x + 1) END AS f
    FROM (SELECT * FROM hour_tests UNION ALL SELECT * FROM day_tests)
),

scores AS (
    -- A negative binomial's tails are an F distribution's: P(X >= x) = P(F(2x, 2r) <= m / x),
    -- P(X <= x) = 1 - P(F(2x + 2, 2r) <= m / (x + 1)); Paulson's normal approximation of F gives
    -- the tail as a normal quantile z (Wilson-Hilferty's for Poisson as r grows). The score is
    -- signed: positive for improbably many visits, negative for improbably few.
    SELECT
        *,
        CASE WHEN x > m THEN greatest(0.0, -z) ELSE -greatest(0.0, z) END AS z_signed
    FROM (
        SELECT
            *,
            ((1.0 - 2.0 / (9.0 * d2)) * pow(f, 1.0 / 3.0) - (1.0 - 2.0 / (9.0 * d1)))
            / sqrt(2.0 / (9.0 * d2) * pow(f, 2.0 / 3.0) + 2.0 / (9.0 * d1)) AS z
        FROM tests
    )
),

best AS (
    -- The most improbable window of each hour that moved enough (the shortest on a tie).
    SELECT
        resolution, grain, store, sensor_id, ts, local_date, local_hour, visits, baseline, periods,
        arg_max(z_signed, abs(z_signed) - 1e-6 * coalesce(window_hours, 0)) AS score,
        arg_max(window_hours, abs(z_signed) - 1e-6 * coalesce(window_hours, 0)) AS window_hours,
        arg_max(x, abs(z_signed) - 1e-6 * coalesce(window_hours, 0)) AS window_visits,
        arg_max(m, abs(z_signed) - 1e-6 * coalesce(window_hours, 0)) AS window_baseline
    FROM scores
    WHERE own_moved AND abs(x / m - 1.0) >= $anomaly_min_change AND abs(x - m) >= $anomaly_min_visits
    GROUP BY resolution, grain, store, sensor_id, ts, local_date, local_hour, visits, baseline, periods
),

flagged AS (
    SELECT *, CASE WHEN score < 0 THEN 'low' ELSE 'high' END AS direction
    FROM best
    WHERE abs(score) > $anomaly_z
),

flags AS (
    -- Runs of consecutive flagged hours of one direction on one local day are one event (a
    -- day is its own); an event is named by its first hour: the latest run start so far, in a
    -- window over each door's flags (a window per local day and direction was 2,000 tiny
    -- partitions, most of this step's time).
    SELECT
        *,
        max(CASE WHEN starts THEN ts END) OVER (
            PARTITION BY resolution, grain, store, sensor_id, direction ORDER BY ts ROWS UNBOUNDED PRECEDING
        ) AS event_start
    FROM (
        SELECT
            *,
            coalesce(
                lag(local_date) OVER run <> local_date OR lag(ts) OVER run <> ts - INTERVAL 1 HOUR, TRUE
            ) AS starts
        FROM flagged
        WINDOW run AS (PARTITION BY resolution, grain, store, sensor_id, direction ORDER BY ts)
    )
),

final AS (
    SELECT
        resolution,
        grain,
        store,
        CAST(CASE WHEN grain = 'sensor' THEN sensor_id END AS INTEGER) AS sensor_id,
        ts,
        local_date,
        CAST(local_hour AS BIGINT) AS local_hour,
        visits,
        CAST(baseline AS DOUBLE) AS baseline,
        CAST(score AS DOUBLE) AS score,
        visits / baseline - 1 AS change,
        direction,
        CASE WHEN abs(score) > 2 * $anomaly_z THEN 'critical' ELSE 'warning' END AS level,
        -- One-sided tail probability of the score (Abramowitz-Stegun 26.2.17, error < 1e-7).
        exp(-score * score / 2) / sqrt(2 * pi()) * (
            0.319381530 * t - 0.356563782 * t ^ 2 + 1.781477937 * t ^ 3 - 1.821255978 * t ^ 4 + 1.330274429 * t ^ 5
        ) AS p_value,
        concat_ws('/', resolution, grain, store, CASE WHEN grain = 'sensor' THEN CAST(sensor_id AS VARCHAR) ELSE '*' END,
                  strftime(event_start, '%Y-%m-%dT%H:%MZ')) AS event_id,
        CAST(window_hours AS INTEGER) AS window_hours,
        CAST(window_visits AS DOUBLE) AS window_visits,
        CAST(window_baseline AS DOUBLE) AS window_baseline,
        CAST(periods AS INTEGER) AS periods,
        local_date AS part_date
    FROM (SELECT *, 1.0 / (1.0 + 0.2316419 * abs(score)) AS t FROM flags)
)

SELECT * FROM final
