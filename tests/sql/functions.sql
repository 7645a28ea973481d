-- The functions Flink users bring (Nexmark q2, q10, q14, q21, q22 and their
-- everyday neighbours): string, regular-expression, calendar, elementary and
-- choice functions, and aggregate FILTER (WHERE ...).
CREATE STREAM bids (
  auction BIGINT, bidder BIGINT, price DOUBLE, channel VARCHAR, date_time TIMESTAMP
) WITH (connector = 'file', path = 'tests/sql/data/bids.jsonl');

-- case: scalar functions
SELECT auction, MOD(bidder, 4) AS m,
       REPLACE(channel, 'o', '0') AS replaced, POSITION('o' IN channel) AS pos,
       STRPOS(channel, 'e') AS strpos, LOCATE('l', channel) AS locate,
       TRIM(BOTH 'G' FROM channel) AS trimmed, LTRIM('  x ') AS l, RTRIM('x..', '.') AS r,
       SPLIT_PART('a/b/c', '/', auction) AS part, SPLIT_INDEX('a/b/c', '/', auction) AS idx,
       REGEXP_EXTRACT(channel, '([A-Z])([a-z]+)', 2) AS tail,
       REGEXP_REPLACE(channel, '[aeiou]', '*') AS starred,
       DATE_FORMAT(date_time, 'yyyy-MM-dd HH:mm:ss.SSS') AS formatted,
       HOUR(date_time) AS h, MINUTE(date_time) AS mi, SECOND(date_time) AS s,
       DAYOFMONTH(date_time) AS dom, DAYOFWEEK(date_time) AS dow,
       SQRT(price) AS root, POWER(bidder, 2) AS sq, ROUND(LN(EXP(2)), 6) AS two, LOG10(100) AS log,
       NULLIF(channel, 'Apple') AS not_apple, GREATEST(price, 20, bidder) AS most,
       LEAST(price, 20) AS least
FROM bids;

-- case: aggregates FILTER (WHERE ...) the rows they take
SELECT channel,
       COUNT(*) AS n,
       COUNT(*) FILTER (WHERE price < 20) AS cheap,
       COUNT(DISTINCT auction) FILTER (WHERE price >= 20) AS pricey_auctions,
       SUM(price) FILTER (WHERE bidder > 11) AS late_sum,
       MAX(DATE_FORMAT(date_time, 'HH:mm:ss')) AS last_second
FROM bids
GROUP BY channel;

-- case: a bad regular expression is an error when the query is planned
SELECT REGEXP_EXTRACT(channel, '(unclosed') FROM bids;
-- case: so is a date letter DATE_FORMAT does not know
SELECT DATE_FORMAT(date_time, 'yyyy-QQ') FROM bids;
-- case: GREATEST compares values of one type
SELECT GREATEST(price, channel) FROM bids;
-- case: FILTER applies to the built-in aggregates
SELECT UPPER(channel) FILTER (WHERE price > 1) FROM bids;
