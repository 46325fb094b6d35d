-- The judge has read the archive up to an arrival time.
INSERT INTO alert_progress VALUES (0, %(at)s)
