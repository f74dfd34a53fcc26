"""Files on disk: Markdown, text, HTML and PDF, permissions from ``.acl.yml``."""
