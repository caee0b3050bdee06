"""What streams are told: the token → account assignment, its versioned store, the
registry rows of assigned tokens, and the control channel that announces them."""
