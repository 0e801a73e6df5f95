"""Everything about a device: how to reach it (transport) and what runs on it (agent)."""
