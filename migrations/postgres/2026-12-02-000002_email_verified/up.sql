-- Whether the user's own address is verified (Keycloak's email_verified at the last sign-in):
-- linking by email attaches only to a user whose own address is.
ALTER TABLE users ADD COLUMN email_verified BOOLEAN NOT NULL DEFAULT FALSE;
