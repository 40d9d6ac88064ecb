DROP TABLE logout_tokens;
