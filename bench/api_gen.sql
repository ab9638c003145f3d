-- bench/api_gen.sql — the analytics API's benchmark data set (issue 5 §3), for bench/api.sh.
--
-- One seller (bench@rastro.local) with 500 bots in 20 pools (every tenth bot
-- in a second pool too) and a year of hourly aggregates: every bot, every
-- hour of the last 366 days (today included, in America/Sao_Paulo), one
-- of six UTM combinations per row: 500 x 366 x 24 = 4.39 M rows in
-- analytics_hourly. Plus Meta spend for five campaigns and manual spend for
-- five pools every day, 300 000 leads over the year and 60 000 payments, and
-- a second seller with a little data of its own (the queries must skip it).
--
-- Fast: set-based generate_series; the rollup triggers are disabled during
-- the bulk load and the rollups rebuilt once at the end
-- (rastro_rollups_rebuild: 008_rollups.sql and 009_api_speed.sql). Pseudo-random but
-- deterministic (integer hashes), so runs are comparable.
--
--   psql "$URL" -v ON_ERROR_STOP=1 -f bench/api_gen.sql
\set ON_ERROR_STOP 1
\timing on

-- bench/api.sh adds the seller with `rastro user add` first (a password to log in over HTTP).
INSERT INTO users (email, password_hash) VALUES ('bench@rastro.local', 'x'), ('other@rastro.local', 'x')
    ON CONFLICT (email) DO NOTHING;
SELECT id AS owner FROM users WHERE email = 'bench@rastro.local' \gset
SELECT id AS other FROM users WHERE email = 'other@rastro.local' \gset
SELECT ((now () AT TIME ZONE 'America/Sao_Paulo')::date) AS today \gset

INSERT INTO pixels (owner_id, pixel_id, token_enc) VALUES (:owner, '900000001', '\x00'), (:other, '900000002', '\x00');

CREATE TEMP TABLE bb AS
SELECT i, NULL::bigint AS id, 1 + (i - 1) % 20 AS p1, 1 + i % 20 AS p2 FROM generate_series (1, 500) i;

INSERT INTO bots (owner_id, telegram_id, username, token_enc)
SELECT :owner, 7000000 + i, 'bench_bot_' || lpad (i::text, 4, '0'), '\x00' FROM bb ORDER BY i;
UPDATE bb SET id = b.id FROM bots b WHERE b.username = 'bench_bot_' || lpad (bb.i::text, 4, '0');

CREATE TEMP TABLE pp AS SELECT k, NULL::bigint AS id FROM generate_series (1, 20) k;
INSERT INTO pools (owner_id, slug, pixel_ref)
SELECT :owner, 'bench-pool-' || k, (SELECT id FROM pixels WHERE pixel_id = '900000001') FROM pp ORDER BY k;
UPDATE pp SET id = p.id FROM pools p WHERE p.slug = 'bench-pool-' || pp.k;
UPDATE bb SET p1 = (SELECT id FROM pp WHERE k = bb.p1), p2 = (SELECT id FROM pp WHERE k = bb.p2);

INSERT INTO pool_bots (pool_id, bot_id) SELECT p1, id FROM bb;
INSERT INTO pool_bots (pool_id, bot_id) SELECT p2, id FROM bb WHERE i % 10 = 0;
INSERT INTO offers (owner_id, bot_id, name, price_cents, deliver_text)
SELECT :owner, id, 'Curso ' || i, 9700, 'ok' FROM bb;

-- The other seller: one bot, one pool, a week of a few rows.
INSERT INTO bots (owner_id, telegram_id, username, token_enc) VALUES (:other, 7999999, 'other_bench_bot', '\x00');
INSERT INTO pools (owner_id, slug, pixel_ref)
VALUES (:other, 'other-pool', (SELECT id FROM pixels WHERE pixel_id = '900000002'));

CREATE TEMP TABLE combos (c int, src text, camp text);
INSERT INTO combos VALUES (0, 'fb', 'camp-1'), (1, 'fb', 'camp-2'), (2, 'fb', 'camp-3'),
                          (3, 'google', 'camp-4'), (4, 'tt', 'camp-5'), (5, '', '');

-- The year of hourly rows, triggers off.
ALTER TABLE analytics_hourly DISABLE TRIGGER USER;
INSERT INTO analytics_hourly (owner_id, day, hour, pool_id, bot_id, utm_source, utm_campaign,
                              clicks, automated_clicks, starts, checkouts, purchases, revenue_cents)
SELECT :owner, :'today'::date - d, h,
       CASE WHEN b.i % 10 = 0 AND h % 5 = 0 THEN b.p2 ELSE b.p1 END, b.id, c.src, c.camp,
       x.r % 23, x.r % 3, x.r % 23 / 3, x.r % 23 / 8, x.r % 23 / 15, (x.r % 23 / 15) * 9700
  FROM bb b CROSS JOIN generate_series (0, 365) d CROSS JOIN generate_series (0, 23) h
  CROSS JOIN LATERAL (SELECT (b.i * 7919 + d * 104729 + h * 1299709) % 997 AS r) x
  JOIN combos c ON c.c = (b.i + d + h) % 6;
INSERT INTO analytics_hourly (owner_id, day, hour, pool_id, bot_id, utm_source, utm_campaign,
                              clicks, starts, purchases, revenue_cents)
SELECT :other, :'today'::date - d, 12, (SELECT id FROM pools WHERE slug = 'other-pool'),
       (SELECT id FROM bots WHERE username = 'other_bench_bot'), 'fb', 'camp-1', 1000, 100, 10, 97000
  FROM generate_series (0, 6) d;
SELECT rastro_rollups_rebuild ();
ALTER TABLE analytics_hourly ENABLE TRIGGER USER;

-- Spend: five Meta campaigns (each tied to one pool) and five pools' manual spend, every day.
INSERT INTO ad_accounts (owner_id, account_id, token_enc) VALUES (:owner, '900000001', '\x00');
INSERT INTO campaign_spend (ad_account_ref, owner_id, day, campaign_id, campaign_name, utm_campaign,
                            pool_id, spend_cents)
SELECT (SELECT id FROM ad_accounts WHERE account_id = '900000001'), :owner, :'today'::date - d,
       'c' || c, 'camp-' || c, 'camp-' || c, (SELECT id FROM pp WHERE pp.k = 1 + (c * 3) % 20),
       10000 + (d * 31 + c * 17) % 5000
  FROM generate_series (0, 365) d CROSS JOIN generate_series (1, 5) c;
INSERT INTO manual_spend (owner_id, pool_id, day, amount_cents)
SELECT :owner, pp.id, :'today'::date - d, 2000 + d % 100
  FROM pp CROSS JOIN generate_series (0, 365) d WHERE pp.k > 15;

-- Leads over the year (each bot's own, its first pool, a UTM combination), and payments.
INSERT INTO leads (owner_id, bot_id, tg_user_id, chat_id, first_name, pool_id, utm_source,
                   utm_campaign, external_id, created_at)
SELECT :owner, b.id, 100000000 + n, 100000000 + n, 'Lead ' || n, b.p1, c.src, c.camp, 'x' || n,
       now () - make_interval (secs => (n * 104.729)::double precision)
  FROM generate_series (1, 300000) n
  JOIN bb b ON b.i = 1 + n % 500
  JOIN combos c ON c.c = n % 6;
INSERT INTO payments (owner_id, bot_id, lead_id, offer_id, gateway, idempotency_key, status,
                      amount_cents, created_at, paid_at)
SELECT l.owner_id, l.bot_id, l.id, o.id, 'pushinpay', 'bench-' || l.id,
       (ARRAY['paid', 'paid', 'expired', 'pending', 'failed'])[1 + l.id / 5 % 5], 9700,
       l.created_at + interval '2 minutes',
       CASE WHEN l.id / 5 % 5 < 2 THEN l.created_at + interval '3 minutes' END
  FROM leads l JOIN offers o ON o.bot_id = l.bot_id
 WHERE l.owner_id = :owner AND l.id % 5 = 0;

VACUUM ANALYZE;
SELECT (SELECT count (*) FROM analytics_hourly) AS hourly_rows,
       (SELECT count (*) FROM analytics_roll_bot) AS roll_bot_rows,
       (SELECT count (*) FROM analytics_hour_bot) AS hour_bot_rows,
       (SELECT count (*) FROM leads) AS leads, (SELECT count (*) FROM payments) AS payments;
