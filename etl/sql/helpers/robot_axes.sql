-- robot_axes (a helper, not a mart: etl/transform.py's connect() makes it from the site
-- registry; see stores.sql for why from list parameters): each robot axis's reference mean and
-- std over whole days (the maker's figures).
CREATE TEMP TABLE robot_axes AS
SELECT
    unnest($robot_id::VARCHAR[]) AS robot_id,
    unnest($axis::VARCHAR[]) AS axis,
    unnest($reference_mean::DOUBLE[]) AS reference_mean,
    unnest($reference_std::DOUBLE[]) AS reference_std
