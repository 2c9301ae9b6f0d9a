-- The prediction gateway: traffic routing (written by the rollout workflow / admins, followed by
-- every gateway through LISTEN/NOTIFY), gateway instances with the routing generation they have
-- applied, the prediction log (partitioned by day), feedback labels and API keys.

-- One global, monotonic routing generation: every change to any model's routing takes the next
-- value, and a gateway reports the highest generation it has applied in `gateway_instances`, so a
-- workflow that wrote generation G waits until every live gateway reports >= G.
CREATE SEQUENCE routing_generation AS bigint START 1;

-- Per routed model: the generation of its current routing and the salt of the sticky split (a
-- unit id hashes with the salt into [0, 1); keeping the salt across a ramp keeps the 5 % inside
-- the 25 %, changing it reshuffles units).
CREATE TABLE model_routing (
  model       text        PRIMARY KEY REFERENCES models (name),
  generation  bigint      NOT NULL,
  salt        text        NOT NULL CHECK (length(salt) BETWEEN 1 AND 200),
  updated_by  text        NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now()
);

-- The versions a model's traffic goes to. Live weights of a model sum to 1 (checked by the writer,
-- stores/routes.ts); shadow versions score the same requests after the answer is sent.
CREATE TABLE routes (
  model       text             NOT NULL REFERENCES model_routing (model) ON DELETE CASCADE,
  version     integer          NOT NULL,
  weight      double precision NOT NULL CHECK (weight >= 0 AND weight <= 1),
  mode        text             NOT NULL CHECK (mode IN ('live', 'shadow')),
  -- what predictions and metrics call this route, e.g. control / candidate; default v<version>
  variant     text             NOT NULL CHECK (variant ~ '^[a-z_][a-z0-9_]{0,62}$'),
  generation  bigint           NOT NULL,
  PRIMARY KEY (model, version),
  UNIQUE (model, variant),
  FOREIGN KEY (model, version) REFERENCES model_versions (model, version)
);

-- Wakes every gateway (LISTEN keel_routing) when routing or a champion alias changes; the payload
-- is the new generation (or 0 for an alias change). Gateways also poll, so a lost notification
-- only delays a change by one polling interval.
CREATE FUNCTION keel_notify_routing() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_TABLE_NAME = 'model_routing' THEN
    PERFORM pg_notify('keel_routing', COALESCE(NEW.generation, OLD.generation)::text);
  ELSE
    PERFORM pg_notify('keel_routing', '0');
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER model_routing_notify AFTER INSERT OR UPDATE OR DELETE ON model_routing
  FOR EACH ROW EXECUTE FUNCTION keel_notify_routing();
CREATE TRIGGER model_aliases_notify AFTER INSERT OR UPDATE OR DELETE ON model_aliases
  FOR EACH ROW EXECUTE FUNCTION keel_notify_routing();

CREATE TABLE gateway_instances (
  id                  text        PRIMARY KEY,
  host                text        NOT NULL,
  pid                 integer     NOT NULL,
  url                 text,
  applied_generation  bigint      NOT NULL DEFAULT 0,
  started_at          timestamptz NOT NULL DEFAULT now(),
  last_seen           timestamptz NOT NULL DEFAULT now(),
  -- set on a clean shutdown: a stopped gateway is never waited for
  stopped_at          timestamptz
);

-- Every served prediction, live and shadow. Partitioned by day on ts; the log writer creates the
-- partitions it needs (stores/predictions.ts), rows of a day without one land in the default.
-- (ts, request_id, model, version, mode) is unique so that replaying a spill file after a partial
-- write never counts a prediction twice.
CREATE TABLE predictions (
  request_id  text             NOT NULL,
  model       text             NOT NULL,
  version     integer          NOT NULL,
  variant     text             NOT NULL,
  mode        text             NOT NULL CHECK (mode IN ('live', 'shadow')),
  features    jsonb            NOT NULL,
  output      jsonb            NOT NULL,
  latency_ms  double precision NOT NULL,
  ts          timestamptz      NOT NULL,
  gateway_id  text,
  UNIQUE (ts, request_id, model, version, mode)
) PARTITION BY RANGE (ts);
CREATE TABLE predictions_default PARTITION OF predictions DEFAULT;
CREATE INDEX predictions_request_id ON predictions (request_id);
CREATE INDEX predictions_model_ts ON predictions (model, ts);

-- Labels that arrive later, by request id. The first label recorded for a request id is kept;
-- see stores/feedback.ts for duplicates.
CREATE TABLE feedback (
  request_id  text             PRIMARY KEY,
  label       double precision NOT NULL,
  ts          timestamptz      NOT NULL DEFAULT now(),
  source      text
);

-- API keys: the secret is shown once at creation; only its sha256 is stored.
CREATE TABLE api_keys (
  id            text        PRIMARY KEY CHECK (id ~ '^[a-z0-9]{8,32}$'),
  name          text        NOT NULL,
  secret_sha256 char(64)    NOT NULL CHECK (secret_sha256 ~ '^[0-9a-f]{64}$'),
  roles         text[]      NOT NULL CHECK (roles <@ ARRAY['predict', 'feedback', 'admin', 'approver']::text[] AND cardinality(roles) > 0),
  created_at    timestamptz NOT NULL DEFAULT now(),
  created_by    text        NOT NULL,
  revoked_at    timestamptz,
  last_used_at  timestamptz
);
