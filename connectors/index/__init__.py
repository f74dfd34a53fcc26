"""The vector index: chunks with their ACLs, searched under an audience filter."""
