-- Ended sessions and logged-out subjects, kept until no access token issued before the end can
-- still be live: every instance refuses their tokens (and cached sessions) after reloading this.
CREATE TABLE revocations (
    id BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    revoked_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX revocations_revoked_at_idx ON revocations (revoked_at);
CREATE INDEX revocations_expires_at_idx ON revocations (expires_at);
