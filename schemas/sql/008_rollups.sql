-- 008_rollups — read-side rollups of analytics_hourly for the API (issue 5 §3).
--
-- The analytics API (lib/rst_apiq.c) answers sums over a range of days —
-- the whole account, one pool, one bot, per bot, per pool, per UTM — in a
-- few milliseconds even for a year of hourly rows of 500 bots. Summing
-- analytics_hourly itself would read millions of rows; these tables hold the
-- same numbers pre-summed, kept exactly in step with analytics_hourly by
-- statement-level triggers (below) in the same transaction as the change.
--
-- Day blocks. The analytics_roll_* tables hold one row per block of days
-- and key: a block of level L (0..4) covers the 4^L days starting at
-- `start`, a day number (days since 1970-01-01, in the owner's time zone)
-- that is a multiple of 4^L: level 0 is one day, 1 four days, 2 sixteen,
-- 3 sixty-four, 4 two hundred fifty-six. Every day counts in exactly one
-- block per level. A range [a, b] is read as its canonical cover (the API
-- computes it: from a, take the largest aligned block that fits, and so on),
-- at most 3 blocks per level on each side: a 366-day range is at most ~25
-- blocks, 30 days at most ~12, instead of 366 or 30 rows per key.
--
--   analytics_roll_pool  (owner, level, start, pool)                 summary, funnel, by-pool
--   analytics_roll_bot   (owner, level, start, bot, pool)            bot filter (with pool), by-bot
--   analytics_roll_utm   (owner, level, start, pool, source, campaign) /utm
--
-- Hours. /hourly returns one row per (day, hour), so its rollups keep hours:
--
--   analytics_hour_owner (owner, day, hour)
--   analytics_hour_pool  (owner, pool, day, hour)
--   analytics_hour_bot   (owner, bot, day, hour, pool)
--
-- Maintenance: the aggregator only inserts rows and adds to them
-- (INSERT ... ON CONFLICT DO UPDATE SET x = x + EXCLUDED.x, lib/rst_aggstore.c).
-- AFTER INSERT / UPDATE / DELETE statement triggers with transition tables
-- add the difference (new rows minus old rows) of the whole statement, grouped
-- by each rollup's key, in key order (so two concurrent writers queue on each
-- other's rows rather than deadlock); TRUNCATE empties the rollups.
-- rastro_rollups_rebuild() recomputes everything from analytics_hourly (used
-- below to fill the rollups of an existing database, and by bench/ after a
-- bulk load with the triggers disabled).
--
-- Also here: the indexes the API needs (leads and payments per owner, newest
-- first; bots and pools per owner; manual spend per owner and day).

CREATE FUNCTION rastro_day_block (d date, lvl integer) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (d - DATE '1970-01-01')
         - (((d - DATE '1970-01-01') % (1 << (2 * lvl))) + (1 << (2 * lvl))) % (1 << (2 * lvl))
$$;

CREATE TABLE analytics_roll_pool (
    owner_id         bigint NOT NULL,
    lvl              smallint NOT NULL CHECK (lvl BETWEEN 0 AND 4),
    start            integer NOT NULL,              -- first day of the block (days since 1970-01-01)
    pool_id          bigint NOT NULL,
    clicks           bigint NOT NULL DEFAULT 0,
    automated_clicks bigint NOT NULL DEFAULT 0,
    starts           bigint NOT NULL DEFAULT 0,
    checkouts        bigint NOT NULL DEFAULT 0,
    purchases        bigint NOT NULL DEFAULT 0,
    revenue_cents    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (owner_id, lvl, start, pool_id)
) WITH (fillfactor = 80);

CREATE TABLE analytics_roll_bot (
    owner_id         bigint NOT NULL,
    lvl              smallint NOT NULL CHECK (lvl BETWEEN 0 AND 4),
    start            integer NOT NULL,
    bot_id           bigint NOT NULL,
    pool_id          bigint NOT NULL,
    clicks           bigint NOT NULL DEFAULT 0,
    automated_clicks bigint NOT NULL DEFAULT 0,
    starts           bigint NOT NULL DEFAULT 0,
    checkouts        bigint NOT NULL DEFAULT 0,
    purchases        bigint NOT NULL DEFAULT 0,
    revenue_cents    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (owner_id, lvl, start, bot_id, pool_id)
) WITH (fillfactor = 80);

CREATE TABLE analytics_roll_utm (
    owner_id         bigint NOT NULL,
    lvl              smallint NOT NULL CHECK (lvl BETWEEN 0 AND 4),
    start            integer NOT NULL,
    pool_id          bigint NOT NULL,
    utm_source       text NOT NULL,
    utm_campaign     text NOT NULL,
    clicks           bigint NOT NULL DEFAULT 0,
    automated_clicks bigint NOT NULL DEFAULT 0,
    starts           bigint NOT NULL DEFAULT 0,
    checkouts        bigint NOT NULL DEFAULT 0,
    purchases        bigint NOT NULL DEFAULT 0,
    revenue_cents    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (owner_id, lvl, start, pool_id, utm_source, utm_campaign)
) WITH (fillfactor = 80);

CREATE TABLE analytics_hour_owner (
    owner_id         bigint NOT NULL,
    day              date NOT NULL,
    hour             smallint NOT NULL,
    clicks           bigint NOT NULL DEFAULT 0,
    automated_clicks bigint NOT NULL DEFAULT 0,
    starts           bigint NOT NULL DEFAULT 0,
    checkouts        bigint NOT NULL DEFAULT 0,
    purchases        bigint NOT NULL DEFAULT 0,
    revenue_cents    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (owner_id, day, hour)
) WITH (fillfactor = 80);

CREATE TABLE analytics_hour_pool (
    owner_id         bigint NOT NULL,
    pool_id          bigint NOT NULL,
    day              date NOT NULL,
    hour             smallint NOT NULL,
    clicks           bigint NOT NULL DEFAULT 0,
    automated_clicks bigint NOT NULL DEFAULT 0,
    starts           bigint NOT NULL DEFAULT 0,
    checkouts        bigint NOT NULL DEFAULT 0,
    purchases        bigint NOT NULL DEFAULT 0,
    revenue_cents    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (owner_id, pool_id, day, hour)
) WITH (fillfactor = 80);

CREATE TABLE analytics_hour_bot (
    owner_id         bigint NOT NULL,
    bot_id           bigint NOT NULL,
    day              date NOT NULL,
    hour             smallint NOT NULL,
    pool_id          bigint NOT NULL,
    clicks           bigint NOT NULL DEFAULT 0,
    automated_clicks bigint NOT NULL DEFAULT 0,
    starts           bigint NOT NULL DEFAULT 0,
    checkouts        bigint NOT NULL DEFAULT 0,
    purchases        bigint NOT NULL DEFAULT 0,
    revenue_cents    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (owner_id, bot_id, day, hour, pool_id)
) WITH (fillfactor = 80);

-- The statements that add the rows of the query SRC (the columns of
-- analytics_hourly, metrics signed: + for new rows, - for old ones) to every
-- rollup. Groups whose sum is all zero (an UPDATE that changed nothing) are
-- skipped. (The trigger runs them itself: transition tables are only
-- visible to the trigger function's own statements.)
CREATE FUNCTION rastro_rollups_sql (src text) RETURNS text[] LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    sums constant text :=
        'sum (clicks), sum (automated_clicks), sum (starts), sum (checkouts), sum (purchases), sum (revenue_cents)';
    nonzero constant text :=
        'HAVING sum (clicks) <> 0 OR sum (automated_clicks) <> 0 OR sum (starts) <> 0'
        ' OR sum (checkouts) <> 0 OR sum (purchases) <> 0 OR sum (revenue_cents) <> 0';
    add constant text :=
        'clicks = t.clicks + EXCLUDED.clicks, automated_clicks = t.automated_clicks + EXCLUDED.automated_clicks,'
        ' starts = t.starts + EXCLUDED.starts, checkouts = t.checkouts + EXCLUDED.checkouts,'
        ' purchases = t.purchases + EXCLUDED.purchases, revenue_cents = t.revenue_cents + EXCLUDED.revenue_cents';
    cols constant text := 'clicks, automated_clicks, starts, checkouts, purchases, revenue_cents';
BEGIN
    RETURN ARRAY[format (
        'WITH d AS (%1$s) INSERT INTO analytics_roll_pool AS t (owner_id, lvl, start, pool_id, %5$s)'
        ' SELECT owner_id, l, rastro_day_block (day, l), pool_id, %2$s FROM d, generate_series (0, 4) l'
        ' GROUP BY 1, 2, 3, 4 %3$s ORDER BY 1, 2, 3, 4'
        ' ON CONFLICT (owner_id, lvl, start, pool_id) DO UPDATE SET %4$s', src, sums, nonzero, add, cols), format (
        'WITH d AS (%1$s) INSERT INTO analytics_roll_bot AS t (owner_id, lvl, start, bot_id, pool_id, %5$s)'
        ' SELECT owner_id, l, rastro_day_block (day, l), bot_id, pool_id, %2$s FROM d, generate_series (0, 4) l'
        ' GROUP BY 1, 2, 3, 4, 5 %3$s ORDER BY 1, 2, 3, 4, 5'
        ' ON CONFLICT (owner_id, lvl, start, bot_id, pool_id) DO UPDATE SET %4$s', src, sums, nonzero, add, cols), format (
        'WITH d AS (%1$s) INSERT INTO analytics_roll_utm AS t (owner_id, lvl, start, pool_id, utm_source, utm_campaign, %5$s)'
        ' SELECT owner_id, l, rastro_day_block (day, l), pool_id, utm_source, utm_campaign, %2$s'
        ' FROM d, generate_series (0, 4) l'
        ' GROUP BY 1, 2, 3, 4, 5, 6 %3$s ORDER BY 1, 2, 3, 4, 5, 6'
        ' ON CONFLICT (owner_id, lvl, start, pool_id, utm_source, utm_campaign) DO UPDATE SET %4$s',
        src, sums, nonzero, add, cols), format (
        'WITH d AS (%1$s) INSERT INTO analytics_hour_owner AS t (owner_id, day, hour, %5$s)'
        ' SELECT owner_id, day, hour, %2$s FROM d GROUP BY 1, 2, 3 %3$s ORDER BY 1, 2, 3'
        ' ON CONFLICT (owner_id, day, hour) DO UPDATE SET %4$s', src, sums, nonzero, add, cols), format (
        'WITH d AS (%1$s) INSERT INTO analytics_hour_pool AS t (owner_id, pool_id, day, hour, %5$s)'
        ' SELECT owner_id, pool_id, day, hour, %2$s FROM d GROUP BY 1, 2, 3, 4 %3$s ORDER BY 1, 2, 3, 4'
        ' ON CONFLICT (owner_id, pool_id, day, hour) DO UPDATE SET %4$s', src, sums, nonzero, add, cols), format (
        'WITH d AS (%1$s) INSERT INTO analytics_hour_bot AS t (owner_id, bot_id, day, hour, pool_id, %5$s)'
        ' SELECT owner_id, bot_id, day, hour, pool_id, %2$s FROM d GROUP BY 1, 2, 3, 4, 5 %3$s ORDER BY 1, 2, 3, 4, 5'
        ' ON CONFLICT (owner_id, bot_id, day, hour, pool_id) DO UPDATE SET %4$s', src, sums, nonzero, add, cols)];
END $$;

-- The statement triggers: the transition tables are rollup_new / rollup_old.
CREATE FUNCTION rastro_rollups_apply () RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    plus constant text :=
        'SELECT owner_id, day, hour, pool_id, bot_id, utm_source, utm_campaign, clicks, automated_clicks,'
        ' starts, checkouts, purchases, revenue_cents FROM rollup_new';
    minus constant text :=
        'SELECT owner_id, day, hour, pool_id, bot_id, utm_source, utm_campaign, -clicks AS clicks,'
        ' -automated_clicks AS automated_clicks, -starts AS starts, -checkouts AS checkouts,'
        ' -purchases AS purchases, -revenue_cents AS revenue_cents FROM rollup_old';
    src text;
    q text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NOT EXISTS (SELECT 1 FROM rollup_new) THEN
            RETURN NULL;
        END IF;
        src := plus;
    ELSIF TG_OP = 'UPDATE' THEN
        IF NOT EXISTS (SELECT 1 FROM rollup_new) THEN
            RETURN NULL;
        END IF;
        src := plus || ' UNION ALL ' || minus;
    ELSE
        IF NOT EXISTS (SELECT 1 FROM rollup_old) THEN
            RETURN NULL;
        END IF;
        src := minus;
    END IF;
    FOREACH q IN ARRAY rastro_rollups_sql (src) LOOP
        EXECUTE q;
    END LOOP;
    RETURN NULL;
END $$;

CREATE FUNCTION rastro_rollups_truncate () RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE analytics_roll_pool, analytics_roll_bot, analytics_roll_utm,
             analytics_hour_owner, analytics_hour_pool, analytics_hour_bot;
    RETURN NULL;
END $$;

CREATE TRIGGER analytics_hourly_rollup_ins AFTER INSERT ON analytics_hourly
    REFERENCING NEW TABLE AS rollup_new
    FOR EACH STATEMENT EXECUTE FUNCTION rastro_rollups_apply ();
CREATE TRIGGER analytics_hourly_rollup_upd AFTER UPDATE ON analytics_hourly
    REFERENCING OLD TABLE AS rollup_old NEW TABLE AS rollup_new
    FOR EACH STATEMENT EXECUTE FUNCTION rastro_rollups_apply ();
CREATE TRIGGER analytics_hourly_rollup_del AFTER DELETE ON analytics_hourly
    REFERENCING OLD TABLE AS rollup_old
    FOR EACH STATEMENT EXECUTE FUNCTION rastro_rollups_apply ();
CREATE TRIGGER analytics_hourly_rollup_trunc AFTER TRUNCATE ON analytics_hourly
    FOR EACH STATEMENT EXECUTE FUNCTION rastro_rollups_truncate ();

-- Recomputes every rollup from analytics_hourly (level 0 and the hours from
-- the hourly rows, each higher level from the one below), written in key
-- order so that a range's rows share pages. Takes a lock that keeps writers
-- of analytics_hourly out meanwhile.
--
-- fillfactor 80 on the rollups: the triggers' updates stay on the row's page
-- (HOT), so rows written together stay together.
CREATE FUNCTION rastro_rollups_rebuild () RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    cols constant text := 'clicks, automated_clicks, starts, checkouts, purchases, revenue_cents';
    sums constant text :=
        'sum (clicks), sum (automated_clicks), sum (starts), sum (checkouts), sum (purchases), sum (revenue_cents)';
BEGIN
    LOCK TABLE analytics_hourly IN SHARE MODE;
    TRUNCATE analytics_roll_pool, analytics_roll_bot, analytics_roll_utm,
             analytics_hour_owner, analytics_hour_pool, analytics_hour_bot;
    EXECUTE format ('INSERT INTO analytics_hour_bot (owner_id, bot_id, day, hour, pool_id, %s)'
                    ' SELECT owner_id, bot_id, day, hour, pool_id, %s FROM analytics_hourly'
                    ' GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5', cols, sums);
    EXECUTE format ('INSERT INTO analytics_hour_pool (owner_id, pool_id, day, hour, %s)'
                    ' SELECT owner_id, pool_id, day, hour, %s FROM analytics_hour_bot'
                    ' GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4', cols, sums);
    EXECUTE format ('INSERT INTO analytics_hour_owner (owner_id, day, hour, %s)'
                    ' SELECT owner_id, day, hour, %s FROM analytics_hour_pool'
                    ' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3', cols, sums);
    EXECUTE format ('INSERT INTO analytics_roll_bot (owner_id, lvl, start, bot_id, pool_id, %s)'
                    ' SELECT owner_id, 0, day - DATE ''1970-01-01'', bot_id, pool_id, %s'
                    ' FROM analytics_hour_bot GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5', cols, sums);
    EXECUTE format ('INSERT INTO analytics_roll_pool (owner_id, lvl, start, pool_id, %s)'
                    ' SELECT owner_id, 0, day - DATE ''1970-01-01'', pool_id, %s'
                    ' FROM analytics_hour_pool GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4', cols, sums);
    EXECUTE format ('INSERT INTO analytics_roll_utm (owner_id, lvl, start, pool_id, utm_source, utm_campaign, %s)'
                    ' SELECT owner_id, 0, day - DATE ''1970-01-01'', pool_id, utm_source, utm_campaign, %s'
                    ' FROM analytics_hourly GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6', cols, sums);
    FOR l IN 1 .. 4 LOOP
        EXECUTE format ('INSERT INTO analytics_roll_bot (owner_id, lvl, start, bot_id, pool_id, %s)'
                        ' SELECT owner_id, $1, rastro_day_block (DATE ''1970-01-01'' + start, $1), bot_id, pool_id, %s'
                        ' FROM analytics_roll_bot WHERE lvl = $1 - 1 GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5', cols, sums) USING l;
        EXECUTE format ('INSERT INTO analytics_roll_pool (owner_id, lvl, start, pool_id, %s)'
                        ' SELECT owner_id, $1, rastro_day_block (DATE ''1970-01-01'' + start, $1), pool_id, %s'
                        ' FROM analytics_roll_pool WHERE lvl = $1 - 1 GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4', cols, sums) USING l;
        EXECUTE format ('INSERT INTO analytics_roll_utm (owner_id, lvl, start, pool_id, utm_source, utm_campaign, %s)'
                        ' SELECT owner_id, $1, rastro_day_block (DATE ''1970-01-01'' + start, $1), pool_id,'
                        ' utm_source, utm_campaign, %s'
                        ' FROM analytics_roll_utm WHERE lvl = $1 - 1 GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6', cols, sums) USING l;
    END LOOP;
END $$;

SELECT rastro_rollups_rebuild ();

-- The API's lists: newest first per owner (keyset on (created_at, id)).
CREATE INDEX leads_owner_created ON leads (owner_id, created_at DESC, id DESC);
CREATE INDEX leads_owner_bot_created ON leads (owner_id, bot_id, created_at DESC, id DESC);
CREATE INDEX leads_owner_pool_created ON leads (owner_id, pool_id, created_at DESC, id DESC);
CREATE INDEX payments_owner_created ON payments (owner_id, created_at DESC, id DESC);
CREATE INDEX payments_owner_bot_created ON payments (owner_id, bot_id, created_at DESC, id DESC);
CREATE INDEX payments_owner_status_created ON payments (owner_id, status, created_at DESC, id DESC);
CREATE INDEX payments_lead ON payments (lead_id);
CREATE INDEX bots_owner ON bots (owner_id);
CREATE INDEX pools_owner ON pools (owner_id);
-- spend_daily over a range of days, every pool (its key leads with the pool).
CREATE INDEX manual_spend_owner_day ON manual_spend (owner_id, day);
