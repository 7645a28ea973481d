-- Every built-in aggregate, per channel and 20 s window, over input with NULLs:
-- COUNT(x)/COUNT(DISTINCT x) skip NULLs, all-NULL groups give NULL (COUNT gives 0),
-- STDDEV_SAMP/VAR_SAMP need two values.
CREATE STREAM bids (
  auction BIGINT, bidder BIGINT, price DOUBLE, channel VARCHAR, date_time TIMESTAMP,
  WATERMARK FOR date_time AS date_time - INTERVAL '10' SECOND
) WITH (connector = 'file', path = 'tests/sql/data/bids.jsonl');

SELECT window_start, channel,
       COUNT(*) AS n, COUNT(price) AS n_price, COUNT(DISTINCT bidder) AS bidders,
       SUM(price) AS total, SUM(bidder) AS bidder_sum, MIN(price) AS low, MAX(price) AS high,
       MIN(channel) AS first_channel, MAX(date_time) AS last_time,
       AVG(price) AS mean, STDDEV_SAMP(price) AS sd, VAR_SAMP(price) AS var
FROM TUMBLE(bids, date_time, INTERVAL '20' SECOND)
GROUP BY window_start, window_end, channel;
