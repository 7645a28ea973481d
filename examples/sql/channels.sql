-- The shorthand window syntax, printing to stdout: bids and revenue per
-- channel every minute of event time (3,000,000 events: five minutes).
--
--   cargo run --release -p eddy -- run examples/sql/channels.sql
CREATE STREAM bids (
  WATERMARK FOR date_time AS date_time - INTERVAL '2' SECOND
) WITH (connector = 'nexmark', stream = 'bid', events = '3000000', seed = '7');

SELECT channel, window_start, COUNT(*) AS bids, SUM(price) / 100.0 AS revenue_dollars
FROM bids
WHERE price > 0
GROUP BY channel
WINDOW TUMBLING(INTERVAL '1' MINUTE);
