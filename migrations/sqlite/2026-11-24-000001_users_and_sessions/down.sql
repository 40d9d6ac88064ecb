DROP TABLE sessions;
DROP TABLE social_accounts;
DROP TABLE users;
