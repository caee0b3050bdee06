"""The SQL database: engines, the models' base, identity stamp, transactions."""
