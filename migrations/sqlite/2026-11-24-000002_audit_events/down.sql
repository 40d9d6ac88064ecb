DROP TABLE audit_events;
DROP INDEX IF EXISTS users_created_at_idx;
DROP INDEX IF EXISTS users_last_login_at_idx;
