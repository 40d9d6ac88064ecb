-- Local users, the Keycloak subjects linked to them, and server-side browser sessions.
-- Times are Unix seconds (BIGINT) so SQLite and PostgreSQL share one schema.rs.
CREATE TABLE users (
    id BIGSERIAL PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    email TEXT,
    first_name TEXT NOT NULL DEFAULT '',
    last_name TEXT NOT NULL DEFAULT '',
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at BIGINT NOT NULL,
    last_login_at BIGINT
);
CREATE INDEX users_email_idx ON users (email);

CREATE TABLE social_accounts (
    id BIGSERIAL PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider TEXT NOT NULL,
    uid TEXT NOT NULL,
    extra_data TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL,
    last_login_at BIGINT,
    UNIQUE (provider, uid)
);
CREATE INDEX social_accounts_user_id_idx ON social_accounts (user_id);

CREATE TABLE sessions (
    key_hash TEXT PRIMARY KEY NOT NULL,
    state TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    user_id BIGINT REFERENCES users (id) ON DELETE CASCADE,
    kc_sid TEXT,
    login_id TEXT,
    refresh_lease_until BIGINT
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);
CREATE INDEX sessions_kc_sid_idx ON sessions (kc_sid);
CREATE INDEX sessions_login_id_idx ON sessions (login_id);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);
