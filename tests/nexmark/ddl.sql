-- The Nexmark sources. The suite declares them for Flink as views over its
-- generator (ddl_gen.sql, ddl_views.sql); Eddy's built-in generator gives
-- the three streams directly, with the suite's watermark (4 s behind the
-- largest event time). The test fills in the generator's options.
CREATE TABLE person (WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND)
WITH (connector = 'nexmark', stream = 'person', ${GENERATOR});
CREATE TABLE auction (WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND)
WITH (connector = 'nexmark', stream = 'auction', ${GENERATOR});
CREATE TABLE bid (WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND)
WITH (connector = 'nexmark', stream = 'bid', ${GENERATOR});
