"""Everything that enqueues work: the REST API and the command line."""
