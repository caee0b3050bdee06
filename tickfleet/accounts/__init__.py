"""Broker accounts and the Kite access tokens they stream with."""
