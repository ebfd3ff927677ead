-- The registry's tables. Nothing is ever deleted: subjects and versions carry a `deleted` flag so every
-- ID ever handed out keeps resolving.

-- One row. `id_high_water` is the largest schema ID ever assigned (pinned IDs included); new IDs are
-- taken above it, so an ID is never handed out twice even if a schema row were lost.
CREATE TABLE registry_counters (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    id_high_water INTEGER NOT NULL CHECK (id_high_water >= 0)
);
INSERT INTO registry_counters (singleton, id_high_water) VALUES (1, 0);

CREATE TABLE schemas (
    id INTEGER PRIMARY KEY CHECK (id >= 1),
    format TEXT NOT NULL CHECK (format IN ('AVRO', 'JSON', 'PROTOBUF')),
    schema_text TEXT NOT NULL,
    canonical TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    refs TEXT NOT NULL DEFAULT '[]',
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    -- one content, one ID: the same schema gets the same ID in every subject
    UNIQUE (fingerprint, format)
);

CREATE TABLE subjects (
    subject TEXT PRIMARY KEY,
    namespace TEXT NOT NULL,
    format TEXT NOT NULL CHECK (format IN ('AVRO', 'JSON', 'PROTOBUF')),
    compatibility TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    deleted INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE subject_versions (
    subject TEXT NOT NULL REFERENCES subjects (subject),
    version INTEGER NOT NULL CHECK (version >= 1),
    schema_id INTEGER NOT NULL REFERENCES schemas (id),
    state TEXT NOT NULL CHECK (state IN ('DRAFT', 'ACTIVE', 'DEPRECATED', 'ARCHIVED')),
    deleted INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
    namespace TEXT NOT NULL,
    sunset TEXT,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (subject, version)
);
CREATE INDEX subject_versions_by_schema ON subject_versions (schema_id);

-- The change feed. AUTOINCREMENT: a sequence number is never handed out twice.
CREATE TABLE changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('subject', 'version', 'schema')),
    subject TEXT,
    version INTEGER,
    schema_id INTEGER,
    at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
