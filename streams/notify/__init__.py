"""Delivery of alert changes to people: the alerts topic → a durable SQLite ledger →
notifiers (webhook, e-mail through SMTP, a file outbox).

Nothing here imports Faust except ``agent``; the ledger is also read by the CLI.
"""
