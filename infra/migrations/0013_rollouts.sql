-- Rollouts (issue 16): the per-model lease of the `rollout` workflow, its step analyses, every
-- approval decision, and the history of alias moves ("who was champion on date X").

-- One row per rollout run; status `active` is the lease: at most one active rollout per model,
-- whatever workflow id it was started with.
CREATE TABLE rollouts (
  workflow_id       text        NOT NULL,
  run_id            text        NOT NULL,
  model             text        NOT NULL REFERENCES models (name),
  version           integer     NOT NULL,
  champion_version  integer,
  step              text        NOT NULL DEFAULT 'starting',
  status            text        NOT NULL DEFAULT 'active'
                    CHECK (status IN ('active', 'promoted', 'rolled-back', 'rejected', 'aborted', 'failed', 'cancelled')),
  requested_by      text        NOT NULL,
  -- the model's explicit routing when the lease was taken (null: none, the champion alias served);
  -- a rollback restores exactly this
  prior_routing     jsonb,
  result            jsonb,
  started_at        timestamptz NOT NULL DEFAULT now(),
  ended_at          timestamptz,
  PRIMARY KEY (workflow_id, run_id),
  FOREIGN KEY (model, version) REFERENCES model_versions (model, version)
);
CREATE UNIQUE INDEX rollouts_one_active_per_model ON rollouts (model) WHERE status = 'active';
CREATE INDEX rollouts_model_started ON rollouts (model, started_at DESC);

-- Every analysis of a step (one per look: the first bake and each extension).
CREATE TABLE rollout_analyses (
  workflow_id   text        NOT NULL,
  run_id        text        NOT NULL,
  step_index    integer     NOT NULL,
  look          integer     NOT NULL CHECK (look >= 1),
  stage         text        NOT NULL,
  verdict       text        NOT NULL CHECK (verdict IN ('pass', 'fail', 'inconclusive')),
  checks        jsonb       NOT NULL,
  window_from   timestamptz NOT NULL,
  window_to     timestamptz NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (workflow_id, run_id, step_index, look),
  FOREIGN KEY (workflow_id, run_id) REFERENCES rollouts (workflow_id, run_id)
);

-- Every decision on a rollout step, accepted or refused. message_id is the update id (or the
-- workflow's `signal-<n>` / `timeout-<n>`): a retried activity never writes a decision twice.
CREATE TABLE approvals (
  id           bigserial   PRIMARY KEY,
  workflow_id  text        NOT NULL,
  run_id       text        NOT NULL,
  model        text        NOT NULL,
  version      integer     NOT NULL,
  step         text        NOT NULL,
  approver     text        NOT NULL,
  decision     text        NOT NULL CHECK (decision IN ('approve', 'reject')),
  reason       text        NOT NULL DEFAULT '',
  via          text        NOT NULL CHECK (via IN ('update', 'signal', 'timeout', 'http')),
  message_id   text        NOT NULL,
  accepted     boolean     NOT NULL,
  refusal      text,
  decided_at   timestamptz NOT NULL,
  recorded_at  timestamptz NOT NULL DEFAULT now(),
  UNIQUE (workflow_id, run_id, message_id),
  FOREIGN KEY (workflow_id, run_id) REFERENCES rollouts (workflow_id, run_id)
);

-- One row per alias move made by a rollout (or an admin): who, when, which workflow.
CREATE TABLE alias_history (
  id            bigserial   PRIMARY KEY,
  model         text        NOT NULL REFERENCES models (name),
  alias         text        NOT NULL,
  from_version  integer,
  to_version    integer     NOT NULL,
  moved_by      text        NOT NULL,
  workflow_id   text,
  run_id        text,
  moved_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alias_history_model_alias ON alias_history (model, alias, moved_at);

-- Free-form tags of a version; a rolled-back version gets `rollback_reason` (and who / which rollout).
ALTER TABLE model_versions ADD COLUMN tags jsonb NOT NULL DEFAULT '{}'::jsonb;
