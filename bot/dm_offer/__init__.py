""""Send me the full answer": the offer kept when a channel answer left documents out (``offer``),
the click (``listener``), the answer in a DM (``handler``), the offer's Block Kit (``blocks``);
the ``answer_in_dm`` task (``task``)."""
