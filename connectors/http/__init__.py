"""HTTP helpers every connector may use: a service's Retry-After honoured (``pacing``) and a
download cut at a size limit (``downloads``). They know no particular service."""
