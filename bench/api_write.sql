-- bench/api_write.sql — the write side of the analytics rollups: one aggregator-shaped
-- statement (lib/rst_aggstore.c: INSERT ... ON CONFLICT DO UPDATE SET x = x + EXCLUDED.x,
-- one row per key) on the data set of bench/api_gen.sql, run by pgbench (bench/api.sh
-- --write). The rollup triggers of 008 (and 009) run at the end of each statement.
--
-- Variables (pgbench -D): owner (the bench seller's id), keys (rows per statement:
-- the aggregator's batch shape is many events for the same hour and few keys, each
-- key one (pool, bot, utm) of the current hour), back (days back: 0 = today's hour,
-- as the live stream counts; > 0 = a late event the catch-up counts, back-dated).
\set first random(1, 500 - :keys)
INSERT INTO analytics_hourly AS h (owner_id, day, hour, pool_id, bot_id, utm_source, utm_campaign,
                                   clicks, automated_clicks, starts, checkouts, purchases, revenue_cents)
SELECT b.owner_id, (now () AT TIME ZONE 'America/Sao_Paulo')::date - :back,
       extract (hour FROM now () AT TIME ZONE 'America/Sao_Paulo')::smallint,
       pb.pool_id, b.id, 'fb', 'camp-1', 3, 1, 1, 1, 0, 0
  FROM (SELECT id, owner_id FROM bots WHERE owner_id = :owner ORDER BY id OFFSET :first LIMIT :keys) b
  JOIN LATERAL (SELECT min (pool_id) AS pool_id FROM pool_bots WHERE bot_id = b.id) pb ON true
 ORDER BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT (owner_id, day, hour, pool_id, bot_id, utm_source, utm_campaign) DO UPDATE SET
       clicks = h.clicks + EXCLUDED.clicks,
       automated_clicks = h.automated_clicks + EXCLUDED.automated_clicks,
       starts = h.starts + EXCLUDED.starts,
       checkouts = h.checkouts + EXCLUDED.checkouts,
       purchases = h.purchases + EXCLUDED.purchases,
       revenue_cents = h.revenue_cents + EXCLUDED.revenue_cents,
       updated_at = now ();
