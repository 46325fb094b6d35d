"""Intake: every event is accepted, rejected with a reason, or ignored as a duplicate."""
