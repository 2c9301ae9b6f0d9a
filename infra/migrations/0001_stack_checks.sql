-- Results of the `stackCheck` workflow: proof that a worker on each task queue can reach
-- Postgres and the artifact store. One row per (workflow, task queue), so a retried activity
-- updates its row instead of adding another.
CREATE TABLE stack_checks (
  workflow_id     text        NOT NULL,
  task_queue      text        NOT NULL,
  worker_identity text        NOT NULL,
  artifact_uri    text        NOT NULL,
  artifact_sha256 char(64)    NOT NULL CHECK (artifact_sha256 ~ '^[0-9a-f]{64}$'),
  checked_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (workflow_id, task_queue)
);
