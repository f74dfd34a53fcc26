"""Confluence Cloud spaces: pages, blog posts and attachments, with their read restrictions."""
