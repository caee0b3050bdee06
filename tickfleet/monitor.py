"""The task monitor and supervisor of stream coroutines: the one place to import them from.

``TaskMonitor.create_monitored_task(coro, task_name, on_error=None)`` keeps the
predecessor's signature; ``Supervisor`` adds restart policies on top. The implementation
lives in ``tickfleet.supervision``, the failure records in ``tickfleet.failures``.
"""

from tickfleet.failures import FailureSink, MemoryFailureLog, RedisFailureLog, TaskFailure
from tickfleet.supervision.monitor import LOOP_TASK, OnError, TaskMonitor, process_context
from tickfleet.supervision.policy import RestartPolicy, Rng
from tickfleet.supervision.supervisor import Factory, Supervisor, SupervisorFailed

__all__ = [
    "LOOP_TASK",
    "Factory",
    "FailureSink",
    "MemoryFailureLog",
    "OnError",
    "RedisFailureLog",
    "RestartPolicy",
    "Rng",
    "Supervisor",
    "SupervisorFailed",
    "TaskFailure",
    "TaskMonitor",
    "process_context",
]
