-- Entity predictions and their online features (issue 15, item 9).

-- Per logged prediction of an `{entity}` row: how many of the model's online features were
-- present / expired / missing, e.g. {"present": 9, "expired": 3, "missing": 0}; null for rows
-- that carried their features.
ALTER TABLE predictions ADD COLUMN feature_presence jsonb;

-- The gateway refuses an `{entity}` row none of whose online features is present (422
-- EntityNotFound / FeaturesExpired); a model with this set is served anyway, from missing values
-- (`keel models <name> --serve-without-features on`).
ALTER TABLE models ADD COLUMN serve_without_features boolean NOT NULL DEFAULT false;
