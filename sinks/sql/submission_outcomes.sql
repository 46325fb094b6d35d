-- Every submission decided, by outcome (the live view's totals).
SELECT toString(outcome), count() FROM submissions GROUP BY outcome
