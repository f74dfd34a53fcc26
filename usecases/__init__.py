"""Slack-free use cases: ask, answer and record, propose and decide, ingest, evaluate."""
