"""The replay feed: a recorded day from the tick archive, republished at N times real time."""
