"""Subscriptions: the store, admission of requests, the desk that serves them, and the
lifecycle events consumers hear."""
