"""``chatops demo``: the sample corpus, asked by different people.

Ingests ``demo/corpus`` (a fictional company, Northwind Logistics) into its own
embedded index under ``.data/demo``, with ``demo/directory.yml`` as the
identity directory, then asks the same questions as different people through
the real question pipeline and prints what each of them gets back. No Slack
workspace, identity tenant, API key or Qdrant server is needed; answers are
extractive unless ``OPENAI_API_KEY`` or ``OPENAI_BASE_URL`` is set.
"""
