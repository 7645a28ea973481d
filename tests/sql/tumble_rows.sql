-- Without aggregates, TUMBLE(...) tags each row with its window (Flink's
-- windowing table function): window_start and window_end are columns.
CREATE STREAM bids (
  auction BIGINT, bidder BIGINT, price DOUBLE, channel VARCHAR, date_time TIMESTAMP,
  WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH (connector = 'file', path = 'tests/sql/data/bids.jsonl');

SELECT auction, date_time, window_start, window_end
FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND)
WHERE auction = 2;
