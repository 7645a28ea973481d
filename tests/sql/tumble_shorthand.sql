-- The shorthand GROUP BY k WINDOW TUMBLING(size) windows on the stream's
-- watermark column and gives the same rows as TUMBLE(...) (see tumble_basic).
CREATE STREAM bids (
  auction BIGINT, bidder BIGINT, price DOUBLE, channel VARCHAR, date_time TIMESTAMP,
  WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH (connector = 'file', path = 'tests/sql/data/bids.jsonl');

SELECT auction, window_start, window_end, COUNT(*) AS bids, SUM(price) AS total
FROM bids
GROUP BY auction
WINDOW TUMBLING(INTERVAL '10' SECOND);
