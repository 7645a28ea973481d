-- Row-at-a-time expressions: arithmetic, comparison, boolean logic, CASE, CAST,
-- IS [NOT] NULL, IN, BETWEEN, LIKE, COALESCE, string and time functions, WHERE.
CREATE STREAM bids (
  auction BIGINT, bidder BIGINT, price DOUBLE, channel VARCHAR, date_time TIMESTAMP
) WITH (connector = 'file', path = 'tests/sql/data/bids.jsonl');

SELECT auction AS a,
       price * 2 + 1 AS doubled,
       bidder / 4 AS quarter, bidder % 4 AS rest,
       price > 20 AND channel = 'Google' AS pricey_google,
       NOT (price < 10) OR price IS NULL AS not_cheap,
       CASE channel WHEN 'Google' THEN 'g' WHEN 'Apple' THEN 'a' ELSE 'other' END AS ch,
       CAST(price AS BIGINT) AS whole, CAST(bidder AS VARCHAR) || '!' AS tag,
       auction IN (1, 3) AS one_or_three, price BETWEEN 10 AND 30 AS mid,
       channel LIKE 'G%' AS g, COALESCE(channel, 'none') AS channel_or_none,
       LOWER(channel) AS lc, UPPER(channel) AS uc, LENGTH(channel) AS len,
       SUBSTRING(channel FROM 2 FOR 3) AS sub, CONCAT(channel, '-', auction) AS label,
       EXTRACT(SECOND FROM date_time) AS sec, DATE_TRUNC('minute', date_time) AS minute,
       date_time + INTERVAL '1' HOUR AS later
FROM bids
WHERE bidder <> 17;
