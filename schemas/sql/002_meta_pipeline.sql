-- 002_meta_pipeline — per-pixel delivery settings and the dead-letter store.
--
-- pixels.rate_per_s: the limiter's token rate for this pixel (events per
-- second); NULL = the topology's default ([limiter] default_rate).
--
-- dead_letters: one row per event Meta refused for good (invalid parameter,
-- invalid or expired token, permissions, deprecated version, too old), or
-- that rastro could not send at all. `payload` is the exact event object
-- that was posted (JSON), so a replay resends it byte for byte with its
-- original event_id. `rastro dlq replay` sets replay_requested_at; the
-- sender that owns the pixel takes the row back into its spool and sets
-- replayed_at. Never holds a token.

ALTER TABLE pixels ADD COLUMN rate_per_s integer CHECK (rate_per_s IS NULL OR rate_per_s BETWEEN 1 AND 100000);

CREATE TABLE dead_letters (
    id                  bigserial PRIMARY KEY,
    owner_id            bigint NOT NULL,
    pixel_id            text NOT NULL,
    event_id            text NOT NULL,
    event_name          text,
    event_time          timestamptz,
    payload             json NOT NULL,          -- json, not jsonb: kept byte for byte
    reason              text NOT NULL,          -- short category, e.g. "invalid-parameter", "token", "too-old"
    http_status         integer,
    error_code          integer,
    error_subcode       integer,
    error_message       text,
    fbtrace_id          text,
    source              text,                   -- journal the event came from, e.g. front.0
    created_at          timestamptz NOT NULL DEFAULT now(),
    replay_requested_at timestamptz,
    replayed_at         timestamptz
);
CREATE INDEX dead_letters_pixel ON dead_letters (pixel_id, created_at);
CREATE INDEX dead_letters_replay ON dead_letters (replay_requested_at)
    WHERE replay_requested_at IS NOT NULL AND replayed_at IS NULL;
CREATE UNIQUE INDEX dead_letters_event ON dead_letters (event_id) WHERE replayed_at IS NULL;

CREATE FUNCTION rastro_dlq_replay_requested () RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('rastro_dlq', NEW.pixel_id);
    RETURN NULL;
END $$;
CREATE TRIGGER dead_letters_replay AFTER UPDATE OF replay_requested_at ON dead_letters
    FOR EACH ROW WHEN (NEW.replay_requested_at IS NOT NULL) EXECUTE FUNCTION rastro_dlq_replay_requested ();
