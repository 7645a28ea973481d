-- Tumbling 10 s windows per auction, EMIT FINAL (the default).
-- Input (tests/sql/data/bids.jsonl, one row per batch) covers:
--  * windows aligned to the epoch: the first event is at 00:00:03, its window is [00:00:00, 00:00:10)
--  * a row 4 s out of order within the watermark delay (00:00:08 after 00:00:12): counted in
--  * a row beyond the delay (00:00:07 after the watermark passed 00:00:10): dropped, counted as late
--  * a NULL group key (its own group), a NULL price (ignored by SUM/MIN/MAX/AVG, not by COUNT(*))
--  * a NULL event time: dropped and counted
--  * no bids in [00:00:20, 00:00:30): no row for that window
--  * a group whose prices are all NULL (auction 3 in [00:00:30, 00:00:40))
CREATE STREAM bids (
  auction BIGINT, bidder BIGINT, price DOUBLE, channel VARCHAR, date_time TIMESTAMP,
  WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH (connector = 'file', path = 'tests/sql/data/bids.jsonl');

SELECT auction, window_start, window_end,
       COUNT(*) AS bids, COUNT(price) AS priced, SUM(price) AS total,
       MIN(price) AS low, MAX(price) AS high, AVG(price) AS mean
FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND)
GROUP BY auction, window_start, window_end
EMIT FINAL;
