-- The ids (jti) of back-channel logout tokens already used, until they expire: a replay is refused.
CREATE TABLE logout_tokens (
    jti TEXT PRIMARY KEY NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX logout_tokens_expires_at_idx ON logout_tokens (expires_at);
