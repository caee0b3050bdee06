"""The feeds behind the stream's ``Feed`` seam, one package per source."""
