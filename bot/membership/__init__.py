"""Channel membership events: the cached member list is dropped (``listener``). No task."""
