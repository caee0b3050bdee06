"""Composition roots: a process's services and a stream's parts, built from settings.
Nothing in the domain imports this package."""
