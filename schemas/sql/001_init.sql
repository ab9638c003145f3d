-- 001_init — users, pixels, bots, pools and clicks.
--
-- Applied by `rastro` (rst_db_migrate) inside one transaction, recorded in
-- schema_migrations. Never edit a migration that has shipped: add a new file.
--
-- Secrets: pixels.token_enc and bots.token_enc hold libsodium secretbox
-- ciphertexts (nonce || box) made with the master key; the plaintext never
-- reaches the database. users.password_hash is an argon2id string.
--
-- Every change to pools, pool_bots, bots or pixels sends NOTIFY rastro_config,
-- which the front's snapshot thread listens to (live within a second).

CREATE TABLE users (
    id            bigserial PRIMARY KEY,
    email         text NOT NULL UNIQUE CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254),
    password_hash text NOT NULL,
    timezone      text NOT NULL DEFAULT 'America/Sao_Paulo',
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE pixels (
    id              bigserial PRIMARY KEY,
    owner_id        bigint NOT NULL REFERENCES users (id),
    pixel_id        text NOT NULL CHECK (pixel_id ~ '^[0-9]{1,32}$'),
    token_enc       bytea NOT NULL,
    test_event_code text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (owner_id, pixel_id)
);

CREATE TABLE bots (
    id          bigserial PRIMARY KEY,
    owner_id    bigint NOT NULL REFERENCES users (id),
    telegram_id bigint NOT NULL UNIQUE,
    username    text NOT NULL UNIQUE CHECK (username ~ '^[A-Za-z0-9_]{5,32}$'),
    token_enc   bytea NOT NULL,
    enabled     boolean NOT NULL DEFAULT true,
    healthy     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now()
);
-- Telegram usernames are case-insensitive.
CREATE UNIQUE INDEX bots_username_lower ON bots (lower(username));

CREATE TABLE pools (
    id         bigserial PRIMARY KEY,
    owner_id   bigint NOT NULL REFERENCES users (id),
    slug       text NOT NULL UNIQUE CHECK (slug ~ '^[A-Za-z0-9_-]{1,64}$'),
    pixel_ref  bigint NOT NULL REFERENCES pixels (id),
    strategy   text NOT NULL DEFAULT 'round-robin' CHECK (strategy IN ('round-robin', 'weighted')),
    enabled    boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE pool_bots (
    pool_id bigint NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    bot_id  bigint NOT NULL REFERENCES bots (id),
    weight  integer NOT NULL DEFAULT 1 CHECK (weight BETWEEN 1 AND 1000),
    PRIMARY KEY (pool_id, bot_id)
);

-- One row per click that got a 302. click_id is the primary key, so a
-- replayed journal entry is stored once (INSERT ... ON CONFLICT DO NOTHING).
CREATE TABLE clicks (
    click_id     text PRIMARY KEY,
    event_id     text NOT NULL UNIQUE,
    owner_id     bigint NOT NULL,
    pool_id      bigint NOT NULL,
    bot_id       bigint NOT NULL,
    pixel_id     text NOT NULL,
    clicked_at   timestamptz NOT NULL,
    ip           text NOT NULL,
    user_agent   text NOT NULL,
    url          text NOT NULL,
    referer      text,
    fbclid       text,
    fbc          text,
    fbp          text,
    utm_source   text,
    utm_medium   text,
    utm_campaign text,
    utm_content  text,
    utm_term     text,
    utm          jsonb NOT NULL DEFAULT '{}',
    source       text NOT NULL,     -- journal that accepted it, e.g. front.0
    stored_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX clicks_pool_time ON clicks (pool_id, clicked_at);

CREATE FUNCTION rastro_config_changed () RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('rastro_config', TG_TABLE_NAME);
    RETURN NULL;
END $$;

CREATE TRIGGER pools_changed AFTER INSERT OR UPDATE OR DELETE ON pools
    FOR EACH STATEMENT EXECUTE FUNCTION rastro_config_changed ();
CREATE TRIGGER pool_bots_changed AFTER INSERT OR UPDATE OR DELETE ON pool_bots
    FOR EACH STATEMENT EXECUTE FUNCTION rastro_config_changed ();
CREATE TRIGGER bots_changed AFTER INSERT OR UPDATE OR DELETE ON bots
    FOR EACH STATEMENT EXECUTE FUNCTION rastro_config_changed ();
CREATE TRIGGER pixels_changed AFTER INSERT OR UPDATE OR DELETE ON pixels
    FOR EACH STATEMENT EXECUTE FUNCTION rastro_config_changed ();
