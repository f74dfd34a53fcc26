"""The App Home tab, the prompts suggested in the agent's Messages tab, and the channel a person
looks at beside the agent (``app_context_changed``)."""
