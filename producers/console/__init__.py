"""What the command line shows in a terminal: the fleet's status, the option chain."""
