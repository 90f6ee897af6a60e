-- Acceptance of careid's terms and conditions, per user and terms version.
CREATE TABLE terms_acceptances (
    user_uuid    TEXT NOT NULL,
    version      TEXT NOT NULL,
    accepted_at  BIGINT NOT NULL,
    PRIMARY KEY (user_uuid, version)
);
