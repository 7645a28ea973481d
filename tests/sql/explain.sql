-- EXPLAIN prints the physical plan, sink first, one node per line.
CREATE STREAM bids (
  auction BIGINT, bidder BIGINT, price DOUBLE, channel VARCHAR, date_time TIMESTAMP,
  WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH (connector = 'file', path = 'tests/sql/data/bids.jsonl');
CREATE STREAM out WITH (connector = 'file', path = 'hot_auctions.csv', format = 'csv');

EXPLAIN INSERT INTO out
SELECT auction, window_start, COUNT(*) AS bids, AVG(price) AS mean
FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND)
WHERE price > 10
GROUP BY auction, window_start, window_end
HAVING COUNT(*) > 1;

EXPLAIN SELECT auction, UPPER(channel) AS ch FROM bids WHERE channel LIKE 'G%';
