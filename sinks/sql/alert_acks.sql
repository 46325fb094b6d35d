-- When a person first acknowledged each alert.
SELECT alert_id, min(acknowledged_at) FROM alert_acks GROUP BY alert_id
