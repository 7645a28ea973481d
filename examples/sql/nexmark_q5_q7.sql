-- Nexmark q5 (hot items) and q7 (highest bid) over 1,000,000 generated
-- events, 5% of them up to 3 s out of order.
--   cargo run --release -p eddy -- run examples/sql/nexmark_q5_q7.sql --stats
CREATE STREAM bids (WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND)
WITH (connector = 'nexmark', stream = 'bid', events = '1000000',
      out_of_order = '0.05', max_delay_ms = '3000');

CREATE STREAM hot_items WITH (connector = 'file', path = 'hot_items.jsonl');
CREATE STREAM highest_bids WITH (connector = 'file', path = 'highest_bids.jsonl');

-- q5: the auctions with the most bids in each 10 s window, every 2 s
INSERT INTO hot_items
SELECT auction, num, window_start FROM (
  SELECT auction, COUNT(*) AS num, window_start,
         RANK() OVER (PARTITION BY window_start ORDER BY COUNT(*) DESC) AS rk
  FROM HOP(bids, date_time, INTERVAL '2' SECOND, INTERVAL '10' SECOND)
  GROUP BY auction, window_start, window_end
) WHERE rk <= 1;

-- q7: the highest bid of each 10 s window
INSERT INTO highest_bids
SELECT auction, bidder, price, date_time, window_start FROM (
  SELECT auction, bidder, price, date_time, window_start,
         ROW_NUMBER() OVER (PARTITION BY window_start ORDER BY price DESC) AS rn
  FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND)
) WHERE rn <= 1;
