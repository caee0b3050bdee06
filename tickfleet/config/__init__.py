"""Configuration: the one settings class and the doors' secret policy."""
