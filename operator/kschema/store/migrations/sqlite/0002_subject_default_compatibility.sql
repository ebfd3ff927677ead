-- Whether a Subject sets spec.compatibility (Confluent's subject-level config) or inherits the
-- cluster-wide default; `compatibility` keeps the level in force when the row was written.
ALTER TABLE subjects ADD COLUMN compatibility_declared INTEGER NOT NULL DEFAULT 1
    CHECK (compatibility_declared IN (0, 1));
