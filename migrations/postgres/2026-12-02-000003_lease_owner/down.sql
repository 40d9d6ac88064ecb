ALTER TABLE sessions DROP COLUMN refresh_lease_owner;
