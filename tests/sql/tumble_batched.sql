-- batch_size: 64
-- The same input in one batch: the watermark advances only after the batch,
-- so the row that is late when rows arrive one by one is counted in here.
CREATE STREAM bids (
  auction BIGINT, bidder BIGINT, price DOUBLE, channel VARCHAR, date_time TIMESTAMP,
  WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH (connector = 'file', path = 'tests/sql/data/bids.jsonl');

SELECT window_start, COUNT(*) AS bids, SUM(price) AS total
FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND)
GROUP BY window_start, window_end;
