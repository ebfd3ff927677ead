-- Data contracts. `schemas.contract` holds a version's registered metadata and rule set as Confluent's JSON
-- ({"metadata": ..., "ruleSet": ...}); it is part of the content's identity (the fingerprint covers it).
-- `subjects.contract` holds the subject's compatibilityGroup and default/override metadata and rule sets.
ALTER TABLE schemas ADD COLUMN contract TEXT NOT NULL DEFAULT '{}';
ALTER TABLE subjects ADD COLUMN contract TEXT NOT NULL DEFAULT '{}';
