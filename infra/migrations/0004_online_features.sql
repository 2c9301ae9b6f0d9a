-- The online store: the latest feature values per (feature view, entity), copied from each view's
-- offline table by `materializeFeatures` (stores/features/materialize.ts) and read by the gateway
-- and `keel features online` (stores/features/online.ts), which apply the view's TTL at read time.
--
-- `entity_key` is the canonical text of the entity: the JSON array of its join-key values in the
-- entity's join-key order, without spaces (JavaScript's JSON.stringify of the array): `[42]`,
-- `["acme",7]`. int64 keys are JSON numbers, string keys JSON strings.
-- `features` holds one member per feature of the view, valued as historical retrieval returns it:
-- float64 / int64 as JSON numbers (float8), bool as true/false, string as a JSON string, timestamp
-- as epoch milliseconds; a null feature is JSON null. `event_timestamp` / `created_timestamp` are
-- those of the offline row the values came from (created is null for views without one).
CREATE TABLE online_features (
  view              text        NOT NULL CHECK (view ~ '^[a-z_][a-z0-9_]{0,62}$'),
  entity_key        text        NOT NULL,
  features          jsonb       NOT NULL CHECK (jsonb_typeof(features) = 'object'),
  event_timestamp   timestamptz NOT NULL,
  created_timestamp timestamptz,
  updated_at        timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (view, entity_key)
);

-- One row per materialized view: how far it has been copied. The watermark is an event time: every
-- offline row with event_timestamp <= watermark (and, for views with a created timestamp, every row
-- created at or before it) has been considered. It is written in the same transaction as the rows
-- themselves, so it moves only when they are committed. `view_version` is the registry version of
-- the definition materialized; when the definition changes, the next run starts over.
CREATE TABLE feature_materializations (
  view              text        PRIMARY KEY REFERENCES feature_views (name) ON DELETE CASCADE,
  view_version      text        NOT NULL CHECK (view_version ~ '^[0-9a-f]{16}$'),
  watermark         timestamptz NOT NULL,
  -- the last run's window (start is null when it read from the beginning) and what it wrote
  last_start        timestamptz,
  last_end          timestamptz NOT NULL,
  last_run_id       text,
  rows_written      bigint      NOT NULL DEFAULT 0 CHECK (rows_written >= 0),
  total_rows_written bigint     NOT NULL DEFAULT 0 CHECK (total_rows_written >= 0),
  updated_at        timestamptz NOT NULL DEFAULT now()
);

-- A view deleted from the registry (applyFeatureDefinitions prunes views no longer declared) takes
-- its online rows with it; its watermark goes by the foreign key above. A trigger rather than a
-- foreign key on online_features, so that bulk upserts pay no per-row referential check.
CREATE FUNCTION keel_drop_online_features() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM online_features WHERE view = OLD.name;
  RETURN OLD;
END
$$;

CREATE TRIGGER feature_views_drop_online_features
  AFTER DELETE ON feature_views
  FOR EACH ROW EXECUTE FUNCTION keel_drop_online_features();
