-- 007_spend — ad spend, from Meta's Insights API or typed in (issue 5 §2).
--
-- Spend is per day in the owner's reporting; Meta's rows are per campaign
-- and day (the ad account's time zone). A campaign is tied to a pool by
-- utm_campaign: the ad's URL carries {{campaign.id}} or {{campaign.name}}
-- (ad_accounts.campaign_key says which), so the campaign's key equals the
-- utm_campaign that its clicks carry. campaign_spend.pool_id is the pool
-- whose clicks carried that utm_campaign on that day (most clicks wins;
-- 0 when no click carried it yet), resolved by the spend sync.
--
-- The sync (the optimizer node, lib/rst_spendsync.c) fetches today's spend
-- every few minutes, the last [optimizer] backfill_days once when an account
-- is added, and each day once more after it ended (closed_through); a fetch
-- replaces the fetched days' rows of its account in one transaction. Days
-- are taken in the owner's time zone (users.timezone), which should be the ad
-- account's (Meta reports days in the account's zone).

CREATE TABLE ad_accounts (
    id              bigserial PRIMARY KEY,
    owner_id        bigint NOT NULL REFERENCES users (id),
    account_id      text NOT NULL CHECK (account_id ~ '^[0-9]{1,32}$'),   -- without "act_"
    token_enc       bytea NOT NULL,                                       -- sealed (rst_secret)
    campaign_key    text NOT NULL DEFAULT 'id' CHECK (campaign_key IN ('id', 'name')),
    enabled         boolean NOT NULL DEFAULT true,
    currency        text,                      -- account_currency as Meta reports it
    last_sync_at    timestamptz,
    last_error      text,
    usage_pct       integer,                   -- highest usage header value seen last
    throttled_until timestamptz,               -- no calls before this (usage at 100)
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- the spend sync's schedule (lib/rst_spendsync.c)
    token_invalid   boolean NOT NULL DEFAULT false,  -- Meta said 190: no call until a new token
    backfilled_at   timestamptz,               -- the first fetch (the last backfill days) done
    closed_through  date,                      -- days up to this one were fetched after they ended
    next_sync_at    timestamptz,               -- no call before this (NULL: due now)
    failures        integer NOT NULL DEFAULT 0, -- failed fetches in a row (backoff)
    UNIQUE (owner_id, account_id)
);

CREATE TABLE campaign_spend (
    ad_account_ref bigint NOT NULL REFERENCES ad_accounts (id) ON DELETE CASCADE,
    owner_id       bigint NOT NULL,
    day            date NOT NULL,
    campaign_id    text NOT NULL,
    campaign_name  text NOT NULL,
    utm_campaign   text NOT NULL,              -- campaign_id or campaign_name (campaign_key)
    pool_id        bigint NOT NULL DEFAULT 0,
    spend_cents    bigint NOT NULL CHECK (spend_cents >= 0),
    fetched_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (ad_account_ref, day, campaign_id)
);
CREATE INDEX campaign_spend_owner_day ON campaign_spend (owner_id, day);

CREATE TABLE manual_spend (
    owner_id     bigint NOT NULL REFERENCES users (id),
    pool_id      bigint NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    day          date NOT NULL,
    amount_cents bigint NOT NULL CHECK (amount_cents >= 0),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (owner_id, pool_id, day)
);

-- Every spend, one row per (source, day, pool, campaign): what the API sums.
CREATE VIEW spend_daily AS
    SELECT owner_id, day, pool_id, utm_campaign, spend_cents AS amount_cents, 'meta'::text AS source
      FROM campaign_spend
    UNION ALL
    SELECT owner_id, day, pool_id, ''::text, amount_cents, 'manual'::text
      FROM manual_spend;
