-- 003_funnel_events — chat-side funnel events (bot start, checkout, payment).
--
-- One row per event the bots node or a payment webhook journaled and the
-- recorder stored (schemas/events.md, "How the recorder stores a chat
-- event"). Clicks stay in `clicks`. A replay of the same event_id is a
-- no-op (INSERT ... ON CONFLICT (event_id) DO NOTHING).
--
-- click_id is the lead's click (NULL for an organic lead, then pool_id is
-- 0); it is not a foreign key: the click may live in another recorder's
-- batch, and an organic lead has none. value_cents is in the currency's
-- minor unit (centavos for BRL).

CREATE TABLE funnel_events (
    event_id     text PRIMARY KEY,
    type         text NOT NULL CHECK (type IN ('start', 'checkout', 'payment')),
    owner_id     bigint NOT NULL,
    pool_id      bigint NOT NULL,               -- 0 = organic lead (no pool)
    bot_id       bigint NOT NULL,
    pixel_id     text NOT NULL,
    click_id     text,                          -- NULL = organic lead
    lead_id      bigint,
    tg_user_id   bigint,
    offer_id     text,
    offer_name   text,
    value_cents  bigint CHECK (value_cents IS NULL OR value_cents >= 0),
    currency     text NOT NULL DEFAULT 'BRL',
    order_id     text,
    happened_at  timestamptz NOT NULL,
    source       text NOT NULL,                 -- journal the event came from, e.g. bots.0
    stored_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX funnel_events_click ON funnel_events (click_id) WHERE click_id IS NOT NULL;
CREATE INDEX funnel_events_owner_time ON funnel_events (owner_id, happened_at);
