-- Decisions so far for one submission source, by outcome.
SELECT outcome, count() FROM submissions FINAL WHERE source = %(source)s GROUP BY outcome
