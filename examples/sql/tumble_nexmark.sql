-- Bids per auction in 10-second tumbling windows over the built-in Nexmark
-- generator: 1,000,000 events (about 920,000 bids), 5% of them up to 3 s out
-- of order, within the 4 s watermark delay.
--
--   cargo run --release -p eddy -- run examples/sql/tumble_nexmark.sql --stats
CREATE STREAM bids (
  WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH (
  connector = 'nexmark', stream = 'bid', events = '1000000', rate = '10000',
  seed = '42', out_of_order = '0.05', max_delay_ms = '3000'
);

CREATE STREAM hot_auctions WITH (connector = 'file', path = 'hot_auctions.jsonl');

INSERT INTO hot_auctions
SELECT auction, window_start, window_end,
       COUNT(*) AS bids, MIN(price) AS low, MAX(price) AS high, AVG(price) AS mean
FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND)
GROUP BY auction, window_start, window_end
HAVING COUNT(*) >= 20
EMIT FINAL;
