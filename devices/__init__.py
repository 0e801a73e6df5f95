"""What runs on a board, and nothing else: the agent (how the coordinator reaches a board lives in harness/transport)."""
