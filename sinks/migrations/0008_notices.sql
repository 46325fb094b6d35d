-- Notices (issue 17): what positive tests and onboarding need of the patient index and the
-- registry tables.

-- Positive tests notify the commune too (CONTRACT §4): the patient index keeps a test's
-- purpose and results, so the rules read them with the rest of the patient's history. Tests
-- indexed before this migration keep empty values and raise no notice (history, like events
-- before a facility's live_from).

ALTER TABLE patient_events ADD COLUMN IF NOT EXISTS purpose LowCardinality(String) DEFAULT '';

ALTER TABLE patient_events ADD COLUMN IF NOT EXISTS results Map(String, String);

-- The local day each facility started sending events (facilities.csv live_from, CONTRACT §2),
-- so that dashboards and Grafana's rules leave what came before it alone, as the engine does.
ALTER TABLE registry_facilities ADD COLUMN IF NOT EXISTS live_from Nullable(Date);
