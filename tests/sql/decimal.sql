-- DECIMAL(p, s): exact numbers. Prices come as JSON numbers and as text
-- (read without a float: 12.345 rounds half up to 12.35 at scale 2), and a
-- number with a point is a DECIMAL literal of its digits (0.1 is DECIMAL(1, 1)).
CREATE STREAM trades (
  sym VARCHAR, price DECIMAL(10, 2), qty INT, fee DECIMAL(5, 4), t TIMESTAMP,
  WATERMARK FOR t AS t
) WITH (connector = 'file', path = 'tests/sql/data/trades.jsonl');

-- case: the types of arithmetic follow SQL's rules (see the header)
SELECT sym, price, price + fee AS plus, price * qty AS times, price / qty AS per,
       price % 1 AS cents, -price AS neg, price * 0.908 AS eur
FROM trades;

-- case: literals are exact; an exponent makes a DOUBLE
SELECT 0.1 + 0.2 AS exact, 0.1e0 + 0.2e0 AS approx, 1.10 * 3 AS three, 10.0 / 3 AS third,
       12345678901234567890123 + 1 AS big
FROM trades WHERE sym = 'BIG';

-- case: comparisons are exact across scales and with integers and doubles
SELECT sym, price FROM trades
WHERE price = 12.340 OR price BETWEEN 0.15 AND 0.25 OR price IN (99999999.99, -2.5) AND price < 0;

-- case: CAST rounds half away from zero; to an integer it truncates
SELECT price, CAST(price AS DECIMAL(5, 1)) AS one_digit, CAST(price AS BIGINT) AS whole,
       CAST(price AS DOUBLE) AS dbl, CAST(price AS VARCHAR) AS txt,
       CAST('1.005' AS DECIMAL(4, 2)) AS from_text, CAST(2.675e0 AS DECIMAL(4, 2)) AS from_double,
       CAST('abc' AS DECIMAL(4, 2)) AS not_a_number
FROM trades WHERE sym <> 'BIG';

-- case: SUM, AVG, MIN and MAX are exact per window
SELECT sym, window_start, SUM(price) AS total, AVG(price) AS mean, MIN(price) AS lo,
       MAX(price) AS hi, SUM(fee) AS fees, COUNT(fee) AS n
FROM TUMBLE(trades, t, INTERVAL '10' SECOND)
GROUP BY sym, window_start, window_end;

-- case: a CAST that does not fit is an error, not a silent NULL
SELECT CAST(price AS DECIMAL(4, 2)) FROM trades;

-- case: so is arithmetic past 38 digits
SELECT CAST(price AS DECIMAL(38, 2)) * 10000000000000000000000000000000000 AS huge FROM trades;

-- case: text with too many digits for the column is a malformed record
CREATE STREAM narrow (sym VARCHAR, price DECIMAL(3, 1))
WITH (connector = 'file', path = 'tests/sql/data/trades.jsonl', 'format.on_error' = 'skip');
SELECT sym, price FROM narrow;

-- case: one million bids of 0.1 sum to exactly 100000.0 (as a DOUBLE they do not)
CREATE STREAM bids (auction BIGINT, date_time TIMESTAMP, WATERMARK FOR date_time AS date_time)
WITH (connector = 'nexmark', stream = 'bid', events = '1086960');
SELECT COUNT(*) AS n, SUM(0.1) AS exact, SUM(0.1e0) AS approx
FROM TUMBLE(bids, date_time, INTERVAL '1' DAY)
GROUP BY window_start, window_end;

-- case: DECIMAL keys: GROUP BY, COUNT(DISTINCT), a join and a ranking
-- (12.34 and 12.345 → 12.35 are two prices; the join matches 0.20 with 0.10)
SELECT price, COUNT(*) AS n, COUNT(DISTINCT fee) AS fees FROM trades GROUP BY price EMIT FINAL;
SELECT a.sym, a.price, b.price AS other FROM trades a JOIN trades b ON a.price = b.price + 0.10;
SELECT sym, price FROM (
  SELECT sym, price, ROW_NUMBER() OVER (PARTITION BY sym ORDER BY price DESC) AS r FROM trades
) WHERE r = 1;

-- case: CASE and COALESCE widen to the type that holds every branch
SELECT sym, COALESCE(fee, price) AS fee_or_price, CASE WHEN qty > 5 THEN price ELSE 0.001 END AS c,
       ABS(price) AS a, ROUND(price, 1) AS r1, FLOOR(price) AS f, CEIL(price) AS ce
FROM trades;

-- case: a changelog's SUM takes rows back exactly
SELECT total, COUNT(*) AS syms FROM (SELECT sym, SUM(price) AS total FROM trades GROUP BY sym) GROUP BY total;

-- case: an OVER window does not take DECIMALs yet
SELECT sym, price, SUM(price) OVER (PARTITION BY sym ORDER BY t ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS last_two
FROM trades;

-- case: functions of a DOUBLE take a DECIMAL as its nearest DOUBLE; the others keep it exact
SELECT price, SQRT(price * price) AS root, POWER(price, 2) AS sq, GREATEST(price, 1) AS g,
       LEAST(price, fee) AS l, MOD(price, 2) AS m, NULLIF(price, 0.10) AS n
FROM trades WHERE sym <> 'BIG';
