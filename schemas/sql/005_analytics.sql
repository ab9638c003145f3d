-- 005_analytics — hourly funnel aggregates, kept by the aggregator node.
--
-- The aggregator (lib/rst_aggregator.c, issue 5 §1) counts every funnel
-- event exactly once into analytics_hourly: from the enrichers' PUB stream
-- (fast path) and from the durable record (clicks, funnel_events; the
-- catch-up pass, which also repairs whatever the stream lost). Both paths
-- use one statement (lib/rst_aggstore.c), in one transaction:
--
--   INSERT INTO analytics_counted ... ON CONFLICT (event_id) DO NOTHING
--   RETURNING event_id            -- only the event ids not counted before
--   INSERT INTO analytics_hourly ... ON CONFLICT (key) DO UPDATE SET x = x + EXCLUDED.x
--
-- so a replay, a restart in the middle of a batch or the two paths meeting
-- never count an event twice, and a crash never counts it half.
--
-- The key of an event (the same for both paths: both read the durable record):
--   owner_id, pool_id, bot_id   the event's (clicks / funnel_events); pool 0 = organic lead
--   day, hour                   the event's time (clicked_at, happened_at) in the owner's
--                               time zone (users.timezone; rastro_timezone below), so DST
--                               is right: a repeated autumn hour adds up in one row, a
--                               skipped spring hour has none
--   utm_source, utm_campaign    a click's own; a chat event's are its lead's click's
--                               (funnel_events.click_id → clicks); '' when none; the
--                               first 256 characters
-- and what it adds:
--   clicks            a click by a person
--   automated_clicks  a click by automated traffic (counted apart, never in `clicks`):
--                     the enricher's verdict when the event came by the stream (user
--                     agent or per-IP rate), the user-agent rules of lib/rst_traffic.h
--                     when the catch-up found it (the per-IP rate is only known from
--                     the stream)
--   starts, checkouts, purchases   one per start, checkout, payment event
--   revenue_cents     the payment's value_cents (centavos)
--
-- Caveats: changing an owner's time zone applies to events counted from then
-- on. Events older than the aggregator's retention ([aggregator]
-- retention_days, default 40) are not counted: their counted ids are purged.

-- Hourly aggregates. Rows are only ever added to (never decremented).
CREATE TABLE analytics_hourly (
    owner_id         bigint NOT NULL,
    day              date NOT NULL,                 -- in the owner's time zone
    hour             smallint NOT NULL CHECK (hour BETWEEN 0 AND 23),
    pool_id          bigint NOT NULL,               -- 0 = organic lead (no pool)
    bot_id           bigint NOT NULL,
    utm_source       text NOT NULL DEFAULT '',      -- '' = none
    utm_campaign     text NOT NULL DEFAULT '',
    clicks           bigint NOT NULL DEFAULT 0,     -- people's clicks
    automated_clicks bigint NOT NULL DEFAULT 0,     -- automated traffic's clicks
    starts           bigint NOT NULL DEFAULT 0,
    checkouts        bigint NOT NULL DEFAULT 0,
    purchases        bigint NOT NULL DEFAULT 0,
    revenue_cents    bigint NOT NULL DEFAULT 0,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (owner_id, day, hour, pool_id, bot_id, utm_source, utm_campaign)
);
CREATE INDEX analytics_hourly_updated ON analytics_hourly (updated_at);

-- Every event id counted, with the day it counted for (owner's time zone)
-- and the path that counted it first ('stream' or 'catchup'). Rows whose day
-- is older than the retention (plus two days of margin for time zones) are
-- purged by the aggregator; events that old are refused, so a purged id can
-- never be counted again.
CREATE TABLE analytics_counted (
    event_id   text PRIMARY KEY,
    day        date NOT NULL,
    via        text NOT NULL CHECK (via IN ('stream', 'catchup')),
    counted_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX analytics_counted_day ON analytics_counted (day);

-- The catch-up's watermark: every event stored (stored_at) before
-- caught_up_to was counted. The next pass looks back from caught_up_to (rows
-- committed late): by [aggregator] catchup_window_s on start and every sixth
-- of that window, by a minute otherwise; without a row (first start) it
-- looks at everything.
CREATE TABLE analytics_catchup (
    id           integer PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    caught_up_to timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- The catch-up reads the durable record by the time rows were stored.
CREATE INDEX clicks_stored_at ON clicks (stored_at);
CREATE INDEX funnel_events_stored_at ON funnel_events (stored_at);

-- The time zone hours are counted in: TZ when PostgreSQL knows it, else
-- America/Sao_Paulo (also for NULL: an owner that does not exist). One
-- bad users.timezone must not block the counting of every other owner.
CREATE FUNCTION rastro_timezone (tz text) RETURNS text LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF tz IS NULL OR tz = '' THEN
        RETURN 'America/Sao_Paulo';
    END IF;
    PERFORM now() AT TIME ZONE tz;
    RETURN tz;
EXCEPTION WHEN invalid_parameter_value THEN
    RETURN 'America/Sao_Paulo';
END $$;
