-- The feature registry: the entities, feature views and feature services a project declared in
-- code (lib/features/definitions.ts), as `applyFeatureDefinitions` (stores/features/registry.ts)
-- stored them. One row per definition, keyed by its name; `definition` is the parsed definition
-- (defaults filled in) and `version` the first 16 hex digits of the sha256 of its canonical JSON,
-- so a version changes exactly when the definition does. Definitions no longer declared are
-- deleted by the next apply. The offline feature tables themselves belong to the project: each
-- view's `source.table` names one (entity join keys, event timestamp, optional created
-- timestamp, features) and should have a btree index on (join keys..., event timestamp).
CREATE TABLE feature_entities (
  name       text        PRIMARY KEY CHECK (name ~ '^[a-z_][a-z0-9_]{0,62}$'),
  definition jsonb       NOT NULL CHECK (jsonb_typeof(definition) = 'object'),
  version    text        NOT NULL CHECK (version ~ '^[0-9a-f]{16}$'),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE feature_views (
  name       text        PRIMARY KEY CHECK (name ~ '^[a-z_][a-z0-9_]{0,62}$'),
  definition jsonb       NOT NULL CHECK (jsonb_typeof(definition) = 'object'),
  version    text        NOT NULL CHECK (version ~ '^[0-9a-f]{16}$'),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE feature_services (
  name       text        PRIMARY KEY CHECK (name ~ '^[a-z_][a-z0-9_]{0,62}$'),
  definition jsonb       NOT NULL CHECK (jsonb_typeof(definition) = 'object'),
  version    text        NOT NULL CHECK (version ~ '^[0-9a-f]{16}$'),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
