"""Hub-ready output: the folder that is committed, its card, and the push."""
