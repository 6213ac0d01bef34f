-- TimescaleDB only: applied after the core migrations where the extension exists.
-- Not run in CI (TimescaleDB cannot be installed there); kept small and explicit.
CREATE EXTENSION IF NOT EXISTS timescaledb;

SELECT create_hypertable('events', by_range('occurred_at', INTERVAL '7 days'),
                         migrate_data => true, if_not_exists => true);
ALTER TABLE events SET (timescaledb.compress, timescaledb.compress_segmentby = 'type');
SELECT add_compression_policy('events', INTERVAL '30 days', if_not_exists => true);
SELECT add_retention_policy('events', INTERVAL '7 years', if_not_exists => true);

-- The same name as the plain function, now backed by TimescaleDB's time_bucket.
CREATE OR REPLACE FUNCTION carewatch_time_bucket(bucket interval, ts timestamptz)
RETURNS timestamptz LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT time_bucket(bucket, ts)
$$;
