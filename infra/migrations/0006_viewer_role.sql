-- The `viewer` role: reads the model registry (GET /v1/models*) and nothing else.
ALTER TABLE api_keys DROP CONSTRAINT api_keys_roles_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_roles_check
  CHECK (roles <@ ARRAY['predict', 'feedback', 'admin', 'approver', 'viewer']::text[] AND cardinality(roles) > 0);
