"""One NPC turn: its typed data (``turn``: Turn, TurnResult, Usage), running it through the hooks
and the gateway (``run``), the turn runner handed to plugins (``runner``) and tool-call actions
(``actions``)."""
