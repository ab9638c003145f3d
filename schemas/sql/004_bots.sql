-- 004_bots — the bots node: update intake, leads, offers, gateways, payments.
--
-- Secrets: gateways.credentials_enc is a libsodium secretbox (nonce || box)
-- of the credentials JSON, sealed with the master key like the tokens.
-- bots.webhook_secret_hash is SHA-256 of the random secret_token registered
-- with setWebhook (the front compares hashes in constant time; the secret
-- itself is never stored).
--
-- Every change to bots or gateways already NOTIFYs rastro_config (001), and
-- offers do too (below): the front and the bots node reload.

-- How a bot receives updates: long polling by the bots node (default) or
-- webhook through the front's POST /telegram/<username>.
ALTER TABLE bots ADD COLUMN update_mode text NOT NULL DEFAULT 'polling'
    CHECK (update_mode IN ('polling', 'webhook'));
ALTER TABLE bots ADD COLUMN webhook_secret_hash bytea
    CHECK (webhook_secret_hash IS NULL OR length(webhook_secret_hash) = 32);
ALTER TABLE bots ADD COLUMN webhook_url text;
-- getUpdates offset to use next (= last confirmed update_id + 1).
ALTER TABLE bots ADD COLUMN poll_offset bigint NOT NULL DEFAULT 0;

-- The bots node writes poll_offset after every stored batch: that must not
-- NOTIFY rastro_config (every node would reload its config each time), so the
-- trigger of 001 now fires only for the columns that are configuration.
DROP TRIGGER bots_changed ON bots;
CREATE TRIGGER bots_changed
    AFTER INSERT OR DELETE OR UPDATE OF owner_id, telegram_id, username, token_enc, enabled,
        healthy, update_mode, webhook_secret_hash, webhook_url ON bots
    FOR EACH STATEMENT EXECUTE FUNCTION rastro_config_changed ();

-- The bots node's registry finds each bot's first pool.
CREATE INDEX pool_bots_bot ON pool_bots (bot_id);

-- One payment gateway per bot.
CREATE TABLE gateways (
    bot_id          bigint PRIMARY KEY REFERENCES bots (id) ON DELETE CASCADE,
    owner_id        bigint NOT NULL REFERENCES users (id),
    kind            text NOT NULL CHECK (kind IN ('mercadopago', 'pushinpay', 'syncpay')),
    credentials_enc bytea NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER gateways_changed AFTER INSERT OR UPDATE OR DELETE ON gateways
    FOR EACH STATEMENT EXECUTE FUNCTION rastro_config_changed ();

-- What a bot sells. The welcome (HTML text, optional photo) is sent with a
-- buy button per enabled offer of the bot, in id order.
CREATE TABLE offers (
    id              bigserial PRIMARY KEY,
    owner_id        bigint NOT NULL REFERENCES users (id),
    bot_id          bigint NOT NULL REFERENCES bots (id) ON DELETE CASCADE,
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
    price_cents     integer NOT NULL CHECK (price_cents BETWEEN 50 AND 100000000),
    welcome_html    text CHECK (welcome_html IS NULL OR length(welcome_html) BETWEEN 1 AND 4096),
    photo           bytea CHECK (photo IS NULL OR length(photo) BETWEEN 1 AND 10485760),
    photo_file_id   text,           -- Telegram's file_id once uploaded (then reused)
    deliver_chat_id bigint,         -- private group/channel: one-person invite link
    deliver_text    text CHECK (deliver_text IS NULL OR length(deliver_text) BETWEEN 1 AND 4096),
    enabled         boolean NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((deliver_chat_id IS NULL) <> (deliver_text IS NULL))
);
CREATE INDEX offers_bot ON offers (bot_id) WHERE enabled;
CREATE TRIGGER offers_changed AFTER INSERT OR UPDATE OR DELETE ON offers
    FOR EACH STATEMENT EXECUTE FUNCTION rastro_config_changed ();

-- Update intake: every update, polled or received by webhook, lands here
-- once (the primary key de-duplicates redeliveries); the bots node handles
-- it and sets handled_at. Handled rows are deleted after 48 hours.
CREATE TABLE tg_updates (
    bot_id      bigint NOT NULL REFERENCES bots (id) ON DELETE CASCADE,
    update_id   bigint NOT NULL,
    body        jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    via         text NOT NULL CHECK (via IN ('polling', 'webhook')),
    attempts    integer NOT NULL DEFAULT 0,
    last_error  text,
    lease_until timestamptz,        -- a worker holds it until then (claimed atomically)
    handled_at  timestamptz,
    PRIMARY KEY (bot_id, update_id)
);
CREATE INDEX tg_updates_todo ON tg_updates (received_at) WHERE handled_at IS NULL;

-- A lead: one Telegram user of one bot. click_id is the click that brought
-- the lead first (its fbc and UTMs are the lead's; the enricher derives the
-- lead's external_id from it, so it never changes); NULL = organic lead.
CREATE TABLE leads (
    id            bigserial PRIMARY KEY,
    owner_id      bigint NOT NULL REFERENCES users (id),
    bot_id        bigint NOT NULL REFERENCES bots (id) ON DELETE CASCADE,
    tg_user_id    bigint NOT NULL,
    chat_id       bigint NOT NULL,
    first_name    text,
    last_name     text,
    username      text,
    language_code text,
    click_id      text,
    pool_id       bigint NOT NULL DEFAULT 0,
    pixel_id      text,
    utm_source    text,
    utm_medium    text,
    utm_campaign  text,
    utm_content   text,
    utm_term      text,
    fbc           text,
    external_id   text NOT NULL,     -- what the enricher sends, before hashing
    last_click_id text,              -- the latest /start payload that named a click
    starts        integer NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (bot_id, tg_user_id)
);
CREATE INDEX leads_click ON leads (click_id) WHERE click_id IS NOT NULL;

-- One PIX charge. Created as 'creating' (the idempotency key is fixed
-- before the gateway is called, so a retry reuses it), 'pending' once the
-- gateway answered, 'paid' exactly once (conditional UPDATE ... WHERE
-- status = 'pending'); only that transition emits the Purchase and starts
-- delivery. At most one open charge per lead and offer (a double tap gets
-- the same charge).
CREATE TABLE payments (
    id               bigserial PRIMARY KEY,
    owner_id         bigint NOT NULL REFERENCES users (id),
    bot_id           bigint NOT NULL REFERENCES bots (id) ON DELETE CASCADE,
    lead_id          bigint NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    offer_id         bigint NOT NULL REFERENCES offers (id) ON DELETE CASCADE,
    gateway          text NOT NULL CHECK (gateway IN ('mercadopago', 'pushinpay', 'syncpay')),
    idempotency_key  text NOT NULL UNIQUE,
    charge_id        text,
    status           text NOT NULL DEFAULT 'creating'
        CHECK (status IN ('creating', 'pending', 'paid', 'expired', 'failed', 'refunded')),
    amount_cents     integer NOT NULL CHECK (amount_cents > 0),
    pix_code         text,
    expires_at       timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    paid_at          timestamptz,
    checked_at       timestamptz,    -- last time the charge was re-read at the gateway
    notified_at      timestamptz,    -- last webhook about it (a hint, never trusted)
    last_error       text,
    delivery_status  text NOT NULL DEFAULT 'none'
        CHECK (delivery_status IN ('none', 'pending', 'sent', 'failed')),
    delivery_attempts integer NOT NULL DEFAULT 0,
    delivery_error   text,
    delivered_at     timestamptz,
    invite_link      text,
    joined_at        timestamptz,
    UNIQUE (gateway, charge_id)
);
CREATE UNIQUE INDEX payments_open ON payments (lead_id, offer_id)
    WHERE status IN ('creating', 'pending');
CREATE INDEX payments_pending ON payments (created_at) WHERE status = 'pending';
CREATE INDEX payments_delivery ON payments (id) WHERE delivery_status = 'pending';
