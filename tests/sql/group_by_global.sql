-- GROUP BY without a window. EMIT FINAL: one row per group when the input
-- ends. The default for a GROUP BY without a window is EMIT CHANGES, since
-- it never closes: a changelog row after every batch (see emit_changes.sql).
-- An aggregate without GROUP BY gives one row.
-- batch_size: 5
CREATE STREAM bids (
  auction BIGINT, bidder BIGINT, price DOUBLE, channel VARCHAR, date_time TIMESTAMP
) WITH (connector = 'file', path = 'tests/sql/data/bids.jsonl');

EXPLAIN SELECT channel, COUNT(*) AS n FROM bids GROUP BY channel;
SELECT channel, COUNT(*) AS n, MAX(price) AS high FROM bids GROUP BY channel EMIT FINAL;
SELECT COUNT(*) AS n, COUNT(DISTINCT auction) AS auctions, SUM(price) AS total FROM bids EMIT FINAL;
-- the default: batches of 5 rows, so three changelog steps
SELECT COUNT(*) AS n, COUNT(DISTINCT auction) AS auctions, SUM(price) AS total FROM bids;
