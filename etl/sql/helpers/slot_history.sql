-- slot_history(past) (a macro, not a mart: etl/transform.py's connect() makes it): what
-- door_anomalies judges an hour by, from the list of its slot's earlier visits (the same weekday
-- and hour over $anomaly_weeks weeks, null for a failed or incomplete hour): their count, sum,
-- extremes, sum of squares and variance. door_hourly_sensor and door_hourly_store take the list
-- in the window of their own baselines, which spares door_anomalies a sort of every door-hour.
CREATE TEMP MACRO slot_history(past) AS {
    'periods': coalesce(list_count(past), 0),
    'total': list_sum(past),
    'highest': CAST(list_max(past) AS BIGINT),
    'lowest': CAST(list_min(past) AS BIGINT),
    'total_squares': list_sum(list_transform(past, lambda v: CAST(v AS BIGINT) * v)),
    'plain_var': list_var_samp(past)
};
