"""Document sources: each yields documents with their permissions."""
