-- National areas of work (`P####:Q####:T####` codes and their quoted three-part names), for the
-- `aow` / `aow_codes` fields of role claims.
CREATE TABLE rbac_areas_of_work (
    code  TEXT PRIMARY KEY,
    name  TEXT NOT NULL
);
