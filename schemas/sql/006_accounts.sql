-- 006_accounts — dashboard sessions and login throttling (issue 5 §4).
--
-- A session is a random token given to the browser in the rastro_session
-- cookie (HttpOnly, SameSite=Strict); only its SHA-256 is stored, so a copy
-- of the database cannot be used to log in. Each session has its own CSRF
-- token that the page sends back in X-CSRF-Token on every write.

CREATE TABLE sessions (
    token_hash   bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    user_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    ip           text,
    user_agent   text
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- Failed logins, counted per key ('ip:<address>' or 'user:<email>') over a
-- sliding window; rows older than the window are deleted as they are read.
CREATE TABLE login_failures (
    key text NOT NULL,
    at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_key ON login_failures (key, at);
