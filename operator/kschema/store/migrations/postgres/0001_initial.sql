-- The registry's tables. Nothing is ever deleted: subjects and versions carry a `deleted` flag so every
-- ID ever handed out keeps resolving.

-- One row. `id_high_water` is the largest schema ID ever assigned (pinned IDs included); new IDs are
-- taken above it. Every write transaction locks this row first: writes are serialised, so change-feed
-- sequence numbers become visible in the order they were taken and a follower never skips one.
CREATE TABLE registry_counters (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    id_high_water BIGINT NOT NULL CHECK (id_high_water >= 0)
);
INSERT INTO registry_counters (singleton, id_high_water) VALUES (1, 0);

CREATE TABLE schemas (
    id BIGINT PRIMARY KEY CHECK (id >= 1),
    format TEXT NOT NULL CHECK (format IN ('AVRO', 'JSON', 'PROTOBUF')),
    schema_text TEXT NOT NULL,
    canonical TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    refs TEXT NOT NULL DEFAULT '[]',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- one content, one ID: the same schema gets the same ID in every subject
    CONSTRAINT schemas_content_key UNIQUE (fingerprint, format)
);

CREATE TABLE subjects (
    subject TEXT PRIMARY KEY,
    namespace TEXT NOT NULL,
    format TEXT NOT NULL CHECK (format IN ('AVRO', 'JSON', 'PROTOBUF')),
    compatibility TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    deleted BOOLEAN NOT NULL DEFAULT FALSE,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE subject_versions (
    subject TEXT NOT NULL REFERENCES subjects (subject),
    version INTEGER NOT NULL CHECK (version >= 1),
    schema_id BIGINT NOT NULL REFERENCES schemas (id),
    state TEXT NOT NULL CHECK (state IN ('DRAFT', 'ACTIVE', 'DEPRECATED', 'ARCHIVED')),
    deleted BOOLEAN NOT NULL DEFAULT FALSE,
    namespace TEXT NOT NULL,
    sunset TEXT,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (subject, version)
);
CREATE INDEX subject_versions_by_schema ON subject_versions (schema_id);

CREATE TABLE changes (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('subject', 'version', 'schema')),
    subject TEXT,
    version INTEGER,
    schema_id BIGINT,
    at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
