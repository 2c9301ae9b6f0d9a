-- Registration is idempotent per (model, bundle sha256): training the same data with the same
-- config again answers the version the first run registered instead of adding another.
--
-- A database may already hold such duplicates (registered before this migration). They are kept:
-- versions are immutable and aliases, routes, predictions and lineage may name them. Each later
-- copy records the earliest version with the same bundle in `duplicate_of`, and the bundle is
-- unique among the versions that duplicate nothing, so no new duplicate can be added.
ALTER TABLE model_versions
  ADD COLUMN duplicate_of integer,
  ADD CONSTRAINT model_versions_duplicate_of_earlier CHECK (duplicate_of < version),
  ADD CONSTRAINT model_versions_duplicate_of_fkey FOREIGN KEY (model, duplicate_of) REFERENCES model_versions (model, version);

UPDATE model_versions v
   SET duplicate_of = first.version
  FROM (SELECT model, bundle_sha256, MIN(version) AS version FROM model_versions GROUP BY model, bundle_sha256) first
 WHERE v.model = first.model AND v.bundle_sha256 = first.bundle_sha256 AND v.version > first.version;

CREATE UNIQUE INDEX model_versions_model_bundle_key ON model_versions (model, bundle_sha256) WHERE duplicate_of IS NULL;
