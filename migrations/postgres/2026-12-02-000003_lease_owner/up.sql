-- Who holds the refresh lease: only its holder may release it or write the tokens it got.
ALTER TABLE sessions ADD COLUMN refresh_lease_owner TEXT;
