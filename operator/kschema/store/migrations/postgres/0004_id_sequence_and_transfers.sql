-- The allocator's own sequence: the last ID it handed out. New IDs come from it, skipping IDs that are
-- taken; a pinned ID never moves it. (Until now new IDs came after the highest ID ever assigned, pins
-- included, so one pin at 2^31-1 exhausted the ID space for everyone.) `id_high_water` stays the
-- largest ID ever assigned, for information. Write transactions still lock this row first.
ALTER TABLE registry_counters ADD COLUMN id_sequence BIGINT NOT NULL DEFAULT 0 CHECK (id_sequence >= 0);
-- A registry that never reached the top of the range continues where it was; one that a pin pushed to the
-- top restarts from the lowest free ID (taken IDs are skipped, so none is ever handed out twice).
UPDATE registry_counters
SET id_sequence = CASE WHEN id_high_water >= 2147483647 THEN 0 ELSE id_high_water END;

-- The namespace the owner hands a subject to (annotation kschema.io/transfer-to on its Subject): once the
-- owner's Subject is deleted, that namespace may claim the subject. A deleted subject otherwise stays
-- owned by its namespace.
ALTER TABLE subjects ADD COLUMN transfer_to TEXT;
