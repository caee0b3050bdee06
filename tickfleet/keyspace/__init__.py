"""The fleet's names in Redis and the broker: keys, streams, queues, tasks."""
