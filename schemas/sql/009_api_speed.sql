-- 009_api_speed — what the analytics API needs for p99 < 5 ms on a year of 500 bots (issue 5 §3).
--
-- 1. Per-bot cumulative sums (analytics_cum_bot), for GET /by-bot.
--
--    /by-bot sums every bot of the owner over a range. From the block rollups
--    of 008 that is blocks × (bot, pool) rows: ~11 000 rows for a year of 500
--    bots. Here a row (owner, day, bot) holds the bot's totals over every day
--    up to and including `day` (all pools, all UTMs), so the sum over the days
--    [a, b] is cum(b) − cum(a − 1).
--
--    Rows are dense: every day from the bot's first day with a change (F) to
--    its last (L) has a row, and analytics_cum_bot_last holds F, L and the
--    totals at L (all-time totals: no rows after L). So cum(X) is
--        the last row's totals   when X ≥ L
--        the row at X            when F ≤ X < L
--        zero                    when X < F
--    and /by-bot reads, for the whole owner, two contiguous runs of the
--    primary key (days a − 1 and b, ~500 rows each, written together so
--    they share pages) and the owner's last rows: no per-bot probes, the
--    same cost for a day or a year.
--
--    Kept by statement triggers on analytics_hourly, like 008's rollups,
--    from the statement's delta per (owner, bot, day):
--
--      lock    pg_advisory_xact_lock (1919116642, owner) for every owner in
--              the delta, in order (held to the commit): a writer reads a
--              bot's last row before extending it, so two writers of one
--              owner must not interleave (the aggregator is one writer in
--              practice)
--      extend  rows for the new days before F (zeros) and after L (the
--              totals at L): value-neutral inserts that keep the rows dense
--      add     every row of the bot with day ≥ the delta's day gets the
--              delta: the usual case (the aggregator counts today's events)
--              touches today's row only; a back-dated delta (a late event
--              counted by the catch-up) adds to each later row of that bot
--      days    the owner's totals per day (analytics_day_owner, for /daily)
--      last    the bot's F, L and totals at L
--
--    Run by 008's triggers (rastro_rollups_apply, replaced in 4. below).

CREATE TABLE analytics_cum_bot (
    owner_id         bigint NOT NULL,
    day              date NOT NULL,
    bot_id           bigint NOT NULL,
    clicks           bigint NOT NULL DEFAULT 0,     -- totals of every day ≤ day
    automated_clicks bigint NOT NULL DEFAULT 0,
    starts           bigint NOT NULL DEFAULT 0,
    checkouts        bigint NOT NULL DEFAULT 0,
    purchases        bigint NOT NULL DEFAULT 0,
    revenue_cents    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (owner_id, day, bot_id)
) WITH (fillfactor = 80);
-- One bot's rows (the triggers' "day ≥ d", /daily by bot).
CREATE INDEX analytics_cum_bot_bot ON analytics_cum_bot (owner_id, bot_id, day);

CREATE TABLE analytics_cum_bot_last (
    owner_id         bigint NOT NULL,
    bot_id           bigint NOT NULL,
    first_day        date NOT NULL,                 -- F: the bot's first row
    day              date NOT NULL,                 -- L: its last row
    clicks           bigint NOT NULL DEFAULT 0,     -- the totals at L (= all time)
    automated_clicks bigint NOT NULL DEFAULT 0,
    starts           bigint NOT NULL DEFAULT 0,
    checkouts        bigint NOT NULL DEFAULT 0,
    purchases        bigint NOT NULL DEFAULT 0,
    revenue_cents    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (owner_id, bot_id)
) WITH (fillfactor = 80);

-- The owner's totals per day (GET /daily without a bot or pool: one row
-- per day instead of one per pool and day), kept by the same trigger.
CREATE TABLE analytics_day_owner (
    owner_id         bigint NOT NULL,
    day              date NOT NULL,
    clicks           bigint NOT NULL DEFAULT 0,
    automated_clicks bigint NOT NULL DEFAULT 0,
    starts           bigint NOT NULL DEFAULT 0,
    checkouts        bigint NOT NULL DEFAULT 0,
    purchases        bigint NOT NULL DEFAULT 0,
    revenue_cents    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (owner_id, day)
) WITH (fillfactor = 80);

-- Applies a delta given as parallel arrays sorted by (owner, bot, day),
-- one entry per (owner, bot, day), zero deltas left out.
CREATE FUNCTION rastro_cum_add (o bigint[], b bigint[], d date[], c1 bigint[], c2 bigint[],
                                c3 bigint[], c4 bigint[], c5 bigint[], c6 bigint[])
    RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    owner bigint;
BEGIN
    IF o IS NULL OR cardinality (o) = 0 THEN
        RETURN;
    END IF;
    FOR owner IN SELECT DISTINCT x FROM unnest (o) x ORDER BY x LOOP
        PERFORM pg_advisory_xact_lock (1919116642, (owner % 2147483648)::int);
    END LOOP;
    -- extend: the days before F and after L that the delta reaches.
    INSERT INTO analytics_cum_bot AS t (owner_id, day, bot_id, clicks, automated_clicks, starts,
                                        checkouts, purchases, revenue_cents)
    SELECT x.o, g.day, x.b,
           CASE WHEN g.day > l.day THEN l.clicks ELSE 0 END,
           CASE WHEN g.day > l.day THEN l.automated_clicks ELSE 0 END,
           CASE WHEN g.day > l.day THEN l.starts ELSE 0 END,
           CASE WHEN g.day > l.day THEN l.checkouts ELSE 0 END,
           CASE WHEN g.day > l.day THEN l.purchases ELSE 0 END,
           CASE WHEN g.day > l.day THEN l.revenue_cents ELSE 0 END
      FROM (SELECT y.o, y.b, min (y.d) AS lo, max (y.d) AS hi
              FROM unnest (o, b, d) AS y (o, b, d) GROUP BY 1, 2) x
      LEFT JOIN analytics_cum_bot_last l ON l.owner_id = x.o AND l.bot_id = x.b
     CROSS JOIN LATERAL (
            SELECT x.lo + i AS day FROM generate_series (0, x.hi - x.lo) i WHERE l.owner_id IS NULL
            UNION ALL
            SELECT x.lo + i FROM generate_series (0, l.first_day - 1 - x.lo) i
            UNION ALL
            SELECT l.day + 1 + i FROM generate_series (0, x.hi - l.day - 1) i) g
     ORDER BY 1, 2, 3
        ON CONFLICT (owner_id, day, bot_id) DO NOTHING;
    -- add
    UPDATE analytics_cum_bot AS t
       SET clicks = t.clicks + s.c1, automated_clicks = t.automated_clicks + s.c2,
           starts = t.starts + s.c3, checkouts = t.checkouts + s.c4,
           purchases = t.purchases + s.c5, revenue_cents = t.revenue_cents + s.c6
      FROM (SELECT c.owner_id, c.day, c.bot_id, sum (x.c1) AS c1, sum (x.c2) AS c2,
                   sum (x.c3) AS c3, sum (x.c4) AS c4, sum (x.c5) AS c5, sum (x.c6) AS c6
              FROM unnest (o, b, d, c1, c2, c3, c4, c5, c6) AS x (o, b, d, c1, c2, c3, c4, c5, c6)
              JOIN analytics_cum_bot c ON c.owner_id = x.o AND c.bot_id = x.b AND c.day >= x.d
             GROUP BY 1, 2, 3) s
     WHERE t.owner_id = s.owner_id AND t.day = s.day AND t.bot_id = s.bot_id;
    -- the owner's days
    INSERT INTO analytics_day_owner AS t (owner_id, day, clicks, automated_clicks, starts, checkouts,
                                          purchases, revenue_cents)
    SELECT x.o, x.d, sum (x.c1), sum (x.c2), sum (x.c3), sum (x.c4), sum (x.c5), sum (x.c6)
      FROM unnest (o, d, c1, c2, c3, c4, c5, c6) AS x (o, d, c1, c2, c3, c4, c5, c6)
     GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (owner_id, day) DO UPDATE SET
           clicks = t.clicks + EXCLUDED.clicks, automated_clicks = t.automated_clicks + EXCLUDED.automated_clicks,
           starts = t.starts + EXCLUDED.starts, checkouts = t.checkouts + EXCLUDED.checkouts,
           purchases = t.purchases + EXCLUDED.purchases, revenue_cents = t.revenue_cents + EXCLUDED.revenue_cents;
    -- last
    INSERT INTO analytics_cum_bot_last AS t (owner_id, bot_id, first_day, day, clicks,
                                             automated_clicks, starts, checkouts, purchases,
                                             revenue_cents)
    SELECT x.o, x.b, x.f, x.l, c.clicks, c.automated_clicks, c.starts, c.checkouts, c.purchases,
           c.revenue_cents
      FROM (SELECT y.o, y.b, least (min (y.d), min (l.first_day)) AS f,
                   greatest (max (y.d), max (l.day)) AS l
              FROM unnest (o, b, d) AS y (o, b, d)
              LEFT JOIN analytics_cum_bot_last l ON l.owner_id = y.o AND l.bot_id = y.b
             GROUP BY 1, 2) x
      JOIN analytics_cum_bot c ON c.owner_id = x.o AND c.day = x.l AND c.bot_id = x.b
     ORDER BY 1, 2
        ON CONFLICT (owner_id, bot_id) DO UPDATE SET
           first_day = EXCLUDED.first_day, day = EXCLUDED.day, clicks = EXCLUDED.clicks,
           automated_clicks = EXCLUDED.automated_clicks, starts = EXCLUDED.starts,
           checkouts = EXCLUDED.checkouts, purchases = EXCLUDED.purchases,
           revenue_cents = EXCLUDED.revenue_cents;
END $$;

-- 4. The rollup triggers with static SQL. 008's rastro_rollups_apply ran six
--    dynamic statements per trigger call (EXECUTE: parsed and planned every
--    time, ~1–2 ms each with a year of rollups, most of an aggregator
--    statement's cost). Here each branch turns the transition tables into
--    the statement's delta per hourly key, as arrays, once; rastro_rollups_add
--    applies it to 008's six rollups with the same statements written
--    statically (plans cached per session) and rastro_cum_add to 1.'s tables.
--    Same triggers (008's), same results.
CREATE FUNCTION rastro_rollups_add (
        a_owner bigint[], a_day date[], a_hour smallint[], a_pool bigint[], a_bot bigint[],
        a_source text[], a_campaign text[], a_c1 bigint[], a_c2 bigint[], a_c3 bigint[],
        a_c4 bigint[], a_c5 bigint[], a_c6 bigint[])
    RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO analytics_roll_pool AS t (owner_id, lvl, start, pool_id, clicks, automated_clicks,
                                          starts, checkouts, purchases, revenue_cents)
    SELECT owner_id, l, rastro_day_block (day, l), pool_id, sum (clicks), sum (automated_clicks),
           sum (starts), sum (checkouts), sum (purchases), sum (revenue_cents)
      FROM unnest (a_owner, a_day, a_pool, a_c1, a_c2, a_c3, a_c4, a_c5, a_c6)
           AS d (owner_id, day, pool_id, clicks, automated_clicks, starts, checkouts, purchases, revenue_cents),
           generate_series (0, 4) l
     GROUP BY 1, 2, 3, 4
    HAVING sum (clicks) <> 0 OR sum (automated_clicks) <> 0 OR sum (starts) <> 0
        OR sum (checkouts) <> 0 OR sum (purchases) <> 0 OR sum (revenue_cents) <> 0
     ORDER BY 1, 2, 3, 4
        ON CONFLICT (owner_id, lvl, start, pool_id) DO UPDATE SET
           clicks = t.clicks + EXCLUDED.clicks, automated_clicks = t.automated_clicks + EXCLUDED.automated_clicks,
           starts = t.starts + EXCLUDED.starts, checkouts = t.checkouts + EXCLUDED.checkouts,
           purchases = t.purchases + EXCLUDED.purchases, revenue_cents = t.revenue_cents + EXCLUDED.revenue_cents;
    INSERT INTO analytics_roll_bot AS t (owner_id, lvl, start, bot_id, pool_id, clicks, automated_clicks,
                                         starts, checkouts, purchases, revenue_cents)
    SELECT owner_id, l, rastro_day_block (day, l), bot_id, pool_id, sum (clicks), sum (automated_clicks),
           sum (starts), sum (checkouts), sum (purchases), sum (revenue_cents)
      FROM unnest (a_owner, a_day, a_pool, a_bot, a_c1, a_c2, a_c3, a_c4, a_c5, a_c6)
           AS d (owner_id, day, pool_id, bot_id, clicks, automated_clicks, starts, checkouts, purchases,
                 revenue_cents),
           generate_series (0, 4) l
     GROUP BY 1, 2, 3, 4, 5
    HAVING sum (clicks) <> 0 OR sum (automated_clicks) <> 0 OR sum (starts) <> 0
        OR sum (checkouts) <> 0 OR sum (purchases) <> 0 OR sum (revenue_cents) <> 0
     ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT (owner_id, lvl, start, bot_id, pool_id) DO UPDATE SET
           clicks = t.clicks + EXCLUDED.clicks, automated_clicks = t.automated_clicks + EXCLUDED.automated_clicks,
           starts = t.starts + EXCLUDED.starts, checkouts = t.checkouts + EXCLUDED.checkouts,
           purchases = t.purchases + EXCLUDED.purchases, revenue_cents = t.revenue_cents + EXCLUDED.revenue_cents;
    INSERT INTO analytics_roll_utm AS t (owner_id, lvl, start, pool_id, utm_source, utm_campaign, clicks,
                                         automated_clicks, starts, checkouts, purchases, revenue_cents)
    SELECT owner_id, l, rastro_day_block (day, l), pool_id, utm_source, utm_campaign, sum (clicks),
           sum (automated_clicks), sum (starts), sum (checkouts), sum (purchases), sum (revenue_cents)
      FROM unnest (a_owner, a_day, a_pool, a_source, a_campaign, a_c1, a_c2, a_c3, a_c4, a_c5, a_c6)
           AS d (owner_id, day, pool_id, utm_source, utm_campaign, clicks, automated_clicks, starts,
                 checkouts, purchases, revenue_cents),
           generate_series (0, 4) l
     GROUP BY 1, 2, 3, 4, 5, 6
    HAVING sum (clicks) <> 0 OR sum (automated_clicks) <> 0 OR sum (starts) <> 0
        OR sum (checkouts) <> 0 OR sum (purchases) <> 0 OR sum (revenue_cents) <> 0
     ORDER BY 1, 2, 3, 4, 5, 6
        ON CONFLICT (owner_id, lvl, start, pool_id, utm_source, utm_campaign) DO UPDATE SET
           clicks = t.clicks + EXCLUDED.clicks, automated_clicks = t.automated_clicks + EXCLUDED.automated_clicks,
           starts = t.starts + EXCLUDED.starts, checkouts = t.checkouts + EXCLUDED.checkouts,
           purchases = t.purchases + EXCLUDED.purchases, revenue_cents = t.revenue_cents + EXCLUDED.revenue_cents;
    INSERT INTO analytics_hour_owner AS t (owner_id, day, hour, clicks, automated_clicks, starts,
                                           checkouts, purchases, revenue_cents)
    SELECT owner_id, day, hour, sum (clicks), sum (automated_clicks), sum (starts), sum (checkouts),
           sum (purchases), sum (revenue_cents)
      FROM unnest (a_owner, a_day, a_hour, a_c1, a_c2, a_c3, a_c4, a_c5, a_c6)
           AS d (owner_id, day, hour, clicks, automated_clicks, starts, checkouts, purchases, revenue_cents)
     GROUP BY 1, 2, 3
    HAVING sum (clicks) <> 0 OR sum (automated_clicks) <> 0 OR sum (starts) <> 0
        OR sum (checkouts) <> 0 OR sum (purchases) <> 0 OR sum (revenue_cents) <> 0
     ORDER BY 1, 2, 3
        ON CONFLICT (owner_id, day, hour) DO UPDATE SET
           clicks = t.clicks + EXCLUDED.clicks, automated_clicks = t.automated_clicks + EXCLUDED.automated_clicks,
           starts = t.starts + EXCLUDED.starts, checkouts = t.checkouts + EXCLUDED.checkouts,
           purchases = t.purchases + EXCLUDED.purchases, revenue_cents = t.revenue_cents + EXCLUDED.revenue_cents;
    INSERT INTO analytics_hour_pool AS t (owner_id, pool_id, day, hour, clicks, automated_clicks, starts,
                                          checkouts, purchases, revenue_cents)
    SELECT owner_id, pool_id, day, hour, sum (clicks), sum (automated_clicks), sum (starts),
           sum (checkouts), sum (purchases), sum (revenue_cents)
      FROM unnest (a_owner, a_pool, a_day, a_hour, a_c1, a_c2, a_c3, a_c4, a_c5, a_c6)
           AS d (owner_id, pool_id, day, hour, clicks, automated_clicks, starts, checkouts, purchases,
                 revenue_cents)
     GROUP BY 1, 2, 3, 4
    HAVING sum (clicks) <> 0 OR sum (automated_clicks) <> 0 OR sum (starts) <> 0
        OR sum (checkouts) <> 0 OR sum (purchases) <> 0 OR sum (revenue_cents) <> 0
     ORDER BY 1, 2, 3, 4
        ON CONFLICT (owner_id, pool_id, day, hour) DO UPDATE SET
           clicks = t.clicks + EXCLUDED.clicks, automated_clicks = t.automated_clicks + EXCLUDED.automated_clicks,
           starts = t.starts + EXCLUDED.starts, checkouts = t.checkouts + EXCLUDED.checkouts,
           purchases = t.purchases + EXCLUDED.purchases, revenue_cents = t.revenue_cents + EXCLUDED.revenue_cents;
    INSERT INTO analytics_hour_bot AS t (owner_id, bot_id, day, hour, pool_id, clicks, automated_clicks,
                                         starts, checkouts, purchases, revenue_cents)
    SELECT owner_id, bot_id, day, hour, pool_id, sum (clicks), sum (automated_clicks), sum (starts),
           sum (checkouts), sum (purchases), sum (revenue_cents)
      FROM unnest (a_owner, a_bot, a_day, a_hour, a_pool, a_c1, a_c2, a_c3, a_c4, a_c5, a_c6)
           AS d (owner_id, bot_id, day, hour, pool_id, clicks, automated_clicks, starts, checkouts,
                 purchases, revenue_cents)
     GROUP BY 1, 2, 3, 4, 5
    HAVING sum (clicks) <> 0 OR sum (automated_clicks) <> 0 OR sum (starts) <> 0
        OR sum (checkouts) <> 0 OR sum (purchases) <> 0 OR sum (revenue_cents) <> 0
     ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT (owner_id, bot_id, day, hour, pool_id) DO UPDATE SET
           clicks = t.clicks + EXCLUDED.clicks, automated_clicks = t.automated_clicks + EXCLUDED.automated_clicks,
           starts = t.starts + EXCLUDED.starts, checkouts = t.checkouts + EXCLUDED.checkouts,
           purchases = t.purchases + EXCLUDED.purchases, revenue_cents = t.revenue_cents + EXCLUDED.revenue_cents;
    -- 1.'s tables, from the delta per (owner, bot, day).
    PERFORM rastro_cum_add (array_agg (o ORDER BY o, b, dy), array_agg (b ORDER BY o, b, dy),
                            array_agg (dy ORDER BY o, b, dy), array_agg (s1 ORDER BY o, b, dy),
                            array_agg (s2 ORDER BY o, b, dy), array_agg (s3 ORDER BY o, b, dy),
                            array_agg (s4 ORDER BY o, b, dy), array_agg (s5 ORDER BY o, b, dy),
                            array_agg (s6 ORDER BY o, b, dy))
       FROM (SELECT o, b, dy, sum (v1)::bigint AS s1, sum (v2)::bigint AS s2, sum (v3)::bigint AS s3,
                    sum (v4)::bigint AS s4, sum (v5)::bigint AS s5, sum (v6)::bigint AS s6
               FROM unnest (a_owner, a_bot, a_day, a_c1, a_c2, a_c3, a_c4, a_c5, a_c6)
                    AS x (o, b, dy, v1, v2, v3, v4, v5, v6)
              GROUP BY 1, 2, 3) g
      WHERE s1 <> 0 OR s2 <> 0 OR s3 <> 0 OR s4 <> 0 OR s5 <> 0 OR s6 <> 0;
END $$;

-- The statement triggers of 008 (transition tables rollup_new / rollup_old),
-- now: the delta per hourly key as arrays, then rastro_rollups_add.
CREATE OR REPLACE FUNCTION rastro_rollups_apply () RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    a_owner bigint[]; a_day date[]; a_hour smallint[]; a_pool bigint[]; a_bot bigint[];
    a_source text[]; a_campaign text[];
    a_c1 bigint[]; a_c2 bigint[]; a_c3 bigint[]; a_c4 bigint[]; a_c5 bigint[]; a_c6 bigint[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg (owner_id), array_agg (day), array_agg (hour), array_agg (pool_id),
               array_agg (bot_id), array_agg (utm_source), array_agg (utm_campaign),
               array_agg (clicks), array_agg (automated_clicks), array_agg (starts),
               array_agg (checkouts), array_agg (purchases), array_agg (revenue_cents)
          INTO a_owner, a_day, a_hour, a_pool, a_bot, a_source, a_campaign,
               a_c1, a_c2, a_c3, a_c4, a_c5, a_c6
          FROM rollup_new;
    ELSIF TG_OP = 'UPDATE' THEN
        SELECT array_agg (owner_id), array_agg (day), array_agg (hour), array_agg (pool_id),
               array_agg (bot_id), array_agg (utm_source), array_agg (utm_campaign),
               array_agg (s1), array_agg (s2), array_agg (s3), array_agg (s4), array_agg (s5), array_agg (s6)
          INTO a_owner, a_day, a_hour, a_pool, a_bot, a_source, a_campaign,
               a_c1, a_c2, a_c3, a_c4, a_c5, a_c6
          FROM (SELECT owner_id, day, hour, pool_id, bot_id, utm_source, utm_campaign,
                       sum (clicks)::bigint AS s1, sum (automated_clicks)::bigint AS s2,
                       sum (starts)::bigint AS s3, sum (checkouts)::bigint AS s4,
                       sum (purchases)::bigint AS s5, sum (revenue_cents)::bigint AS s6
                  FROM (SELECT owner_id, day, hour, pool_id, bot_id, utm_source, utm_campaign, clicks,
                               automated_clicks, starts, checkouts, purchases, revenue_cents
                          FROM rollup_new
                        UNION ALL
                        SELECT owner_id, day, hour, pool_id, bot_id, utm_source, utm_campaign, -clicks,
                               -automated_clicks, -starts, -checkouts, -purchases, -revenue_cents
                          FROM rollup_old) u
                 GROUP BY 1, 2, 3, 4, 5, 6, 7) g
         WHERE s1 <> 0 OR s2 <> 0 OR s3 <> 0 OR s4 <> 0 OR s5 <> 0 OR s6 <> 0;
    ELSE
        SELECT array_agg (owner_id), array_agg (day), array_agg (hour), array_agg (pool_id),
               array_agg (bot_id), array_agg (utm_source), array_agg (utm_campaign),
               array_agg (-clicks), array_agg (-automated_clicks), array_agg (-starts),
               array_agg (-checkouts), array_agg (-purchases), array_agg (-revenue_cents)
          INTO a_owner, a_day, a_hour, a_pool, a_bot, a_source, a_campaign,
               a_c1, a_c2, a_c3, a_c4, a_c5, a_c6
          FROM rollup_old;
    END IF;
    IF a_owner IS NOT NULL THEN
        PERFORM rastro_rollups_add (a_owner, a_day, a_hour, a_pool, a_bot, a_source, a_campaign,
                                    a_c1, a_c2, a_c3, a_c4, a_c5, a_c6);
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION rastro_rollups_truncate () RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE analytics_roll_pool, analytics_roll_bot, analytics_roll_utm,
             analytics_hour_owner, analytics_hour_pool, analytics_hour_bot,
             analytics_cum_bot, analytics_cum_bot_last, analytics_day_owner;
    RETURN NULL;
END $$;

-- Recomputes analytics_cum_bot, its last rows and analytics_day_owner from analytics_hourly
-- (under the same lock as the block rollups' rebuild), the rows of one day
-- together.
CREATE FUNCTION rastro_cum_rebuild () RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE analytics_hourly IN SHARE MODE;
    TRUNCATE analytics_cum_bot, analytics_cum_bot_last, analytics_day_owner;
    CREATE TEMP TABLE rastro_cum_days ON COMMIT DROP AS
    SELECT owner_id, bot_id, day, sum (clicks) AS c1, sum (automated_clicks) AS c2,
           sum (starts) AS c3, sum (checkouts) AS c4, sum (purchases) AS c5, sum (revenue_cents) AS c6
      FROM analytics_hourly GROUP BY 1, 2, 3
    HAVING sum (clicks) <> 0 OR sum (automated_clicks) <> 0 OR sum (starts) <> 0
        OR sum (checkouts) <> 0 OR sum (purchases) <> 0 OR sum (revenue_cents) <> 0;
    INSERT INTO analytics_cum_bot (owner_id, day, bot_id, clicks, automated_clicks, starts,
                                   checkouts, purchases, revenue_cents)
    SELECT r.owner_id, g.day, r.bot_id,
           sum (COALESCE (x.c1, 0)) OVER w, sum (COALESCE (x.c2, 0)) OVER w, sum (COALESCE (x.c3, 0)) OVER w,
           sum (COALESCE (x.c4, 0)) OVER w, sum (COALESCE (x.c5, 0)) OVER w, sum (COALESCE (x.c6, 0)) OVER w
      FROM (SELECT owner_id, bot_id, min (day) AS f, max (day) AS l FROM rastro_cum_days GROUP BY 1, 2) r
     CROSS JOIN LATERAL (SELECT r.f + i AS day FROM generate_series (0, r.l - r.f) i) g
      LEFT JOIN rastro_cum_days x ON x.owner_id = r.owner_id AND x.bot_id = r.bot_id AND x.day = g.day
    WINDOW w AS (PARTITION BY r.owner_id, r.bot_id ORDER BY g.day)
     ORDER BY 1, 2, 3;
    INSERT INTO analytics_cum_bot_last (owner_id, bot_id, first_day, day, clicks, automated_clicks,
                                        starts, checkouts, purchases, revenue_cents)
    SELECT r.owner_id, r.bot_id, r.f, r.l, c.clicks, c.automated_clicks, c.starts, c.checkouts,
           c.purchases, c.revenue_cents
      FROM (SELECT owner_id, bot_id, min (day) AS f, max (day) AS l FROM rastro_cum_days GROUP BY 1, 2) r
      JOIN analytics_cum_bot c ON c.owner_id = r.owner_id AND c.day = r.l AND c.bot_id = r.bot_id
     ORDER BY 1, 2;
    INSERT INTO analytics_day_owner (owner_id, day, clicks, automated_clicks, starts, checkouts,
                                     purchases, revenue_cents)
    SELECT owner_id, day, sum (c1), sum (c2), sum (c3), sum (c4), sum (c5), sum (c6)
      FROM rastro_cum_days GROUP BY 1, 2 ORDER BY 1, 2;
    DROP TABLE rastro_cum_days;
END $$;

-- /daily?pool= and /daily?bot=&pool=: one pool's (one bot's in one pool's) days
-- (the primary keys lead with the level and the day).
CREATE INDEX analytics_roll_pool_days ON analytics_roll_pool (owner_id, pool_id, start) WHERE lvl = 0;
CREATE INDEX analytics_roll_bot_days ON analytics_roll_bot (owner_id, bot_id, pool_id, start) WHERE lvl = 0;

ALTER FUNCTION rastro_rollups_rebuild () RENAME TO rastro_rollups_rebuild_blocks;
CREATE FUNCTION rastro_rollups_rebuild () RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM rastro_rollups_rebuild_blocks ();
    PERFORM rastro_cum_rebuild ();
END $$;

SELECT rastro_cum_rebuild ();

-- 2. payments.pool_id (0 = organic, as leads.pool_id).
ALTER TABLE payments ADD COLUMN pool_id bigint NOT NULL DEFAULT 0;
UPDATE payments p SET pool_id = l.pool_id FROM leads l WHERE l.id = p.lead_id AND p.pool_id <> l.pool_id;

CREATE FUNCTION rastro_payment_pool () RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.pool_id := COALESCE ((SELECT pool_id FROM leads WHERE id = NEW.lead_id), 0);
    RETURN NEW;
END $$;
CREATE TRIGGER payments_pool BEFORE INSERT OR UPDATE OF lead_id ON payments
    FOR EACH ROW EXECUTE FUNCTION rastro_payment_pool ();

CREATE FUNCTION rastro_lead_pool () RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE payments SET pool_id = NEW.pool_id WHERE lead_id = NEW.id AND pool_id <> NEW.pool_id;
    RETURN NULL;
END $$;
CREATE TRIGGER leads_pool AFTER UPDATE OF pool_id ON leads
    FOR EACH ROW WHEN (OLD.pool_id IS DISTINCT FROM NEW.pool_id)
    EXECUTE FUNCTION rastro_lead_pool ();

-- /payments?pool= (± status), newest first.
CREATE INDEX payments_owner_pool_created ON payments (owner_id, pool_id, created_at DESC, id DESC);
CREATE INDEX payments_owner_pool_status_created ON payments (owner_id, pool_id, status, created_at DESC, id DESC);

-- 5. Spend per day. pool_id -1 holds the owner's total of the day.
CREATE TABLE spend_day (
    owner_id     bigint NOT NULL,
    pool_id      bigint NOT NULL,                   -- -1: every pool (the owner's total)
    day          date NOT NULL,
    amount_cents bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (owner_id, pool_id, day)
) WITH (fillfactor = 80);

CREATE FUNCTION rastro_spend_day_add (o bigint, p bigint, d date, v bigint) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    IF v = 0 THEN
        RETURN;
    END IF;
    INSERT INTO spend_day AS t (owner_id, pool_id, day, amount_cents)
    VALUES (o, -1, d, v), (o, p, d, v)
        ON CONFLICT (owner_id, pool_id, day) DO UPDATE SET amount_cents = t.amount_cents + EXCLUDED.amount_cents;
END $$;

-- The row triggers: the old row's amount out, the new row's in.
CREATE FUNCTION rastro_spend_day_campaign () RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM rastro_spend_day_add (OLD.owner_id, OLD.pool_id, OLD.day, -OLD.spend_cents);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM rastro_spend_day_add (NEW.owner_id, NEW.pool_id, NEW.day, NEW.spend_cents);
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION rastro_spend_day_manual () RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM rastro_spend_day_add (OLD.owner_id, OLD.pool_id, OLD.day, -OLD.amount_cents);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM rastro_spend_day_add (NEW.owner_id, NEW.pool_id, NEW.day, NEW.amount_cents);
    END IF;
    RETURN NULL;
END $$;

-- Recomputes spend_day from spend_daily.
CREATE FUNCTION rastro_spend_day_rebuild () RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE campaign_spend, manual_spend IN SHARE MODE;
    TRUNCATE spend_day;
    INSERT INTO spend_day (owner_id, pool_id, day, amount_cents)
    SELECT owner_id, pool_id, day, sum (amount_cents) FROM spend_daily GROUP BY 1, 2, 3
    UNION ALL
    SELECT owner_id, -1, day, sum (amount_cents) FROM spend_daily GROUP BY 1, 3;
    DELETE FROM spend_day WHERE amount_cents = 0;
END $$;

CREATE FUNCTION rastro_spend_day_truncate () RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM rastro_spend_day_rebuild ();
    RETURN NULL;
END $$;

CREATE TRIGGER campaign_spend_day AFTER INSERT OR UPDATE OR DELETE ON campaign_spend
    FOR EACH ROW EXECUTE FUNCTION rastro_spend_day_campaign ();
CREATE TRIGGER manual_spend_day AFTER INSERT OR UPDATE OR DELETE ON manual_spend
    FOR EACH ROW EXECUTE FUNCTION rastro_spend_day_manual ();
CREATE TRIGGER campaign_spend_day_trunc AFTER TRUNCATE ON campaign_spend
    FOR EACH STATEMENT EXECUTE FUNCTION rastro_spend_day_truncate ();
CREATE TRIGGER manual_spend_day_trunc AFTER TRUNCATE ON manual_spend
    FOR EACH STATEMENT EXECUTE FUNCTION rastro_spend_day_truncate ();

SELECT rastro_spend_day_rebuild ();
