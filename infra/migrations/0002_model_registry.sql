-- The model registry: models, their immutable versions (bundle + lineage), movable aliases
-- (candidate, champion, previous), and the training sets they were trained on.

-- A training set stored in the artifact store, with where it came from and its data profile.
CREATE TABLE datasets (
  sha256          char(64)    PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  uri             text        NOT NULL,
  size_bytes      bigint      NOT NULL,
  row_count       bigint      NOT NULL,
  columns         jsonb       NOT NULL,
  -- how it was built: file / table / feature views (with their versions)
  source          jsonb       NOT NULL,
  profile_uri     text,
  profile_sha256  char(64)    CHECK (profile_sha256 ~ '^[0-9a-f]{64}$'),
  created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE models (
  name        text        PRIMARY KEY CHECK (name ~ '^[a-z_][a-z0-9_]{0,62}$'),
  description text        NOT NULL DEFAULT '',
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE model_versions (
  model                 text        NOT NULL REFERENCES models (name),
  version               integer     NOT NULL CHECK (version >= 1),
  -- bundle.json (the manifest of model.onnx, signature.json, feature_spec.json, metrics.json, lineage.json)
  bundle_uri            text        NOT NULL,
  bundle_sha256         char(64)    NOT NULL CHECK (bundle_sha256 ~ '^[0-9a-f]{64}$'),
  onnx_sha256           char(64)    NOT NULL CHECK (onnx_sha256 ~ '^[0-9a-f]{64}$'),
  trainer               text        NOT NULL,
  metrics               jsonb       NOT NULL,
  gates                 jsonb       NOT NULL,
  signature             jsonb       NOT NULL,
  feature_spec          jsonb       NOT NULL,
  lineage               jsonb       NOT NULL,
  data_hash             char(64)    NOT NULL REFERENCES datasets (sha256),
  training_workflow_id  text        NOT NULL,
  training_run_id       text        NOT NULL,
  code_version          text        NOT NULL,
  created_by            text        NOT NULL,
  created_at            timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (model, version),
  -- a retried or replayed registration finds its version instead of adding one
  UNIQUE (model, training_workflow_id, training_run_id)
);

CREATE TABLE model_aliases (
  model      text        NOT NULL REFERENCES models (name),
  alias      text        NOT NULL CHECK (alias ~ '^[a-z_][a-z0-9_]{0,62}$'),
  version    integer     NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (model, alias),
  FOREIGN KEY (model, version) REFERENCES model_versions (model, version)
);
