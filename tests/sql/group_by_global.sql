-- GROUP BY without a window: one row per group when the input ends.
-- An aggregate without GROUP BY gives one row.
CREATE STREAM bids (
  auction BIGINT, bidder BIGINT, price DOUBLE, channel VARCHAR, date_time TIMESTAMP
) WITH (connector = 'file', path = 'tests/sql/data/bids.jsonl');

SELECT channel, COUNT(*) AS n, MAX(price) AS high FROM bids GROUP BY channel;
SELECT COUNT(*) AS n, COUNT(DISTINCT auction) AS auctions, SUM(price) AS total FROM bids;
