-- Personal details an RA records beyond the names on `users`, kept apart so they are read only
-- where needed (the admin API), never for tokens. And why and when an identity's status last
-- changed.
CREATE TABLE personal_details (
    user_uuid      TEXT PRIMARY KEY REFERENCES users(uuid),
    date_of_birth  TEXT,             -- YYYY-MM-DD
    ni_number      TEXT,             -- upper case, no spaces
    work_phones    TEXT NOT NULL     -- JSON array
);
ALTER TABLE users ADD COLUMN status_reason TEXT;
ALTER TABLE users ADD COLUMN status_changed_at BIGINT;
