"""Everything between a turn and the upstream: the model catalog (``catalog``), the gateway that
picks, admits, retries and streams (``core``) with its per-turn choices (``policy``), one upstream
request under its deadlines (``attempt``) and upstream failures as protocol errors (``errors``),
its settings, rate limits, retries, breakers, budgets, the response cache, stream deadlines and
metrics. See docs/gateway.md."""
