-- HAVING filters aggregated rows; select items may combine aggregates and keys.
CREATE STREAM bids (
  auction BIGINT, bidder BIGINT, price DOUBLE, channel VARCHAR, date_time TIMESTAMP,
  WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH (connector = 'file', path = 'tests/sql/data/bids.jsonl');

SELECT auction * 100 AS auction_x100, window_end,
       SUM(price) / COUNT(price) AS mean, MAX(price) - MIN(price) AS spread,
       CASE WHEN COUNT(*) >= 3 THEN 'hot' ELSE 'warm' END AS heat
FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND)
WHERE channel <> 'Facebook'
GROUP BY auction, window_start, window_end
HAVING COUNT(*) > 1 AND auction IS NOT NULL;
