"""No silent failures: the task monitor and the supervisor of a stream's coroutines.

``TaskMonitor.create_monitored_task(coro, task_name, on_error=None)`` keeps the
predecessor's signature; ``Supervisor`` adds restart policies on top. Failure records
live in ``tickfleet.supervision.failures``.
"""

from tickfleet.supervision.monitor import LOOP_TASK, OnError, TaskMonitor, process_context
from tickfleet.supervision.policy import FAIL, RestartPolicy, Rng
from tickfleet.supervision.supervisor import Factory, Supervisor, SupervisorFailed

__all__ = [
    "FAIL",
    "LOOP_TASK",
    "Factory",
    "OnError",
    "RestartPolicy",
    "Rng",
    "Supervisor",
    "SupervisorFailed",
    "TaskMonitor",
    "process_context",
]
