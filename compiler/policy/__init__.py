"""Floor 3, policy-as-code: the engine (rules, severity tuning, waivers) and the organisation's Rego policies. Imports `core` and `frontend`."""
