-- The notes example's one table. Each note belongs to a local user of keygate's `users` table;
-- deleting the user deletes their notes.
CREATE TABLE notes (
    id INTEGER PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    body TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL
);
CREATE INDEX notes_user_id ON notes (user_id, id);
