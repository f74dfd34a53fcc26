"""Jira Cloud issues (summary, description, comments, links), with browse permissions and issue security."""
