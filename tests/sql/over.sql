-- Row windows: agg(x) OVER (PARTITION BY k ORDER BY time <frame>), one
-- output row per input row. Rows wait for the watermark to pass them and are
-- then processed in event-time order (ties in arrival order), so results do
-- not depend on arrival order; a row that arrives after the watermark passed
-- its time is late. In bids.jsonl (delay 4 s) the bids at 00:00:08 and
-- 00:00:07 arrive out of order but in time; the NULL-time bid is dropped.
CREATE STREAM bids (
  auction BIGINT, bidder BIGINT, price DOUBLE, channel VARCHAR, date_time TIMESTAMP,
  WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH (connector = 'file', path = 'tests/sql/data/bids.jsonl');

-- case: ROWS: each bid with the average and maximum of its auction's last
-- three bids (itself and the two before it in event time)
EXPLAIN SELECT auction, date_time, price,
       AVG(price) OVER (PARTITION BY auction ORDER BY date_time ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS avg3
FROM bids;
SELECT auction, date_time, price,
       AVG(price) OVER (PARTITION BY auction ORDER BY date_time ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS avg3,
       MAX(price) OVER (PARTITION BY auction ORDER BY date_time ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS max3,
       COUNT(*) OVER (PARTITION BY auction ORDER BY date_time ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS n
FROM bids;

-- case: RANGE: the bids of the last 5 s (by event time) across all auctions;
-- COUNT(price) skips NULL prices, SUM of only NULLs is NULL
SELECT date_time, price,
       COUNT(price) OVER (ORDER BY date_time RANGE BETWEEN INTERVAL '5' SECOND PRECEDING AND CURRENT ROW) AS priced,
       SUM(price) OVER (ORDER BY date_time RANGE BETWEEN INTERVAL '5' SECOND PRECEDING AND CURRENT ROW) AS total,
       MIN(price) OVER (ORDER BY date_time RANGE BETWEEN INTERVAL '5' SECOND PRECEDING AND CURRENT ROW) AS low
FROM bids;

-- case: a running total per channel (UNBOUNDED PRECEDING) with a WHERE first
SELECT channel, date_time, SUM(bidder) OVER (PARTITION BY channel ORDER BY date_time ROWS UNBOUNDED PRECEDING) AS running
FROM bids WHERE price > 10;

-- case: FOLLOWING rows have not arrived yet
SELECT AVG(price) OVER (ORDER BY date_time ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING) FROM bids;
-- case: ORDER BY must be the event time
SELECT AVG(price) OVER (PARTITION BY auction ORDER BY price ROWS 2 PRECEDING) FROM bids;
-- case: OVER with GROUP BY
SELECT auction, AVG(price) OVER (ORDER BY date_time ROWS 2 PRECEDING) FROM bids GROUP BY auction;
-- case: different windows in one query
SELECT AVG(price) OVER (ORDER BY date_time ROWS 2 PRECEDING), AVG(price) OVER (ORDER BY date_time ROWS 3 PRECEDING) FROM bids;
