-- Submission names decided (one per name after FINAL).
SELECT count() FROM submissions FINAL
