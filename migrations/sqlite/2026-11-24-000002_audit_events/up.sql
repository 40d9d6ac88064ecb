-- What happened to whom: logins, refreshes, logouts, registrations and every admin action.
CREATE TABLE audit_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT REFERENCES users (id) ON DELETE SET NULL,
    actor_id BIGINT REFERENCES users (id) ON DELETE SET NULL,
    kind TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    ip TEXT,
    user_agent TEXT,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_events_created_at_idx ON audit_events (created_at);
CREATE INDEX audit_events_user_created_idx ON audit_events (user_id, created_at);
CREATE INDEX audit_events_kind_created_idx ON audit_events (kind, created_at);

-- The admin user list sorts by these.
CREATE INDEX users_created_at_idx ON users (created_at);
CREATE INDEX users_last_login_at_idx ON users (last_login_at);
