-- Bids per auction in 10-second tumbling windows, from Kafka back to Kafka.
-- Needs a broker on 127.0.0.1:19092 (eval "$(scripts/kafka-broker.sh)" starts
-- one) and a topic 'bids' of JSON messages such as
--   {"auction": 1001, "bidder": 7, "price": 42.5, "date_time": 1767225600000}
-- Run:  cargo run --release -p eddy -- run examples/sql/kafka_tumble.sql --stats
-- Read the results from the topic 'bid-counts' (keyed by auction).

CREATE STREAM bids (
  auction BIGINT, bidder BIGINT, price DOUBLE, date_time TIMESTAMP,
  WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH (connector = 'kafka', topic = 'bids',
        'properties.bootstrap.servers' = '127.0.0.1:19092',
        'properties.group.id' = 'eddy-bid-counts',
        'scan.startup.mode' = 'group-offsets',
        'consumer.tier' = 'dedicated',
        'format.on_error' = 'dead_letter', 'dead_letter.path' = 'bad_bids.jsonl',
        'idle_timeout' = '5 s');

CREATE STREAM bid_counts (window_start TIMESTAMP, auction BIGINT, bids BIGINT, top_price DOUBLE)
  WITH (connector = 'kafka', topic = 'bid-counts',
        'properties.bootstrap.servers' = '127.0.0.1:19092', 'key.column' = 'auction');

INSERT INTO bid_counts
SELECT window_start, auction, COUNT(*) AS bids, MAX(price) AS top_price
FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND)
GROUP BY window_start, window_end, auction;
