"""Implementation of the task monitor and supervisor; import the public names from
``tickfleet.monitor``.
"""
