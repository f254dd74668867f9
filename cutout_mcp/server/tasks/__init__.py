"""The `io.modelcontextprotocol/tasks` extension (SEP-2663): `generate_video` as a durable task.

A client that declares the extension on its request gets a task handle at
once (`resultType: "task"`, `taskId`, `status`, `pollIntervalMs`, `ttlMs`)
instead of holding a tool call open for minutes; it polls `tasks/get` until
the task is `completed`, and then finds the ordinary tool result inlined.
Every other client (legacy 2025-11-25 connections, modern clients that did
not opt in) gets the ordinary bounded wait, because the SEP forbids sending a
task to a client that did not ask on that very request.

Decisions:
- The tool runs in a task group owned by the server lifespan (`running()`),
  not by the request, so it outlives the client's ~60 s call limit. The
  task is created only when the tool body calls `begin_task()`, after its
  free checks and any spend confirmation (`server.spend`): the 2026-07-28
  confirmation question rides the `tools/call` result itself, so it is
  answered directly, as is a refusal or a bad argument, and no task exists
  for a call that never spent anything. Inside a
  task the tool waits until the job finishes, bounded by
  `TASK_MAX_WAIT_SECONDS`, and reports progress through the task's
  `statusMessage` (SEP-2663 does not carry progress notifications on tasks).
  Every status message names the upstream job id, so the job is never lost.
- Durable: the task's row is written to the shared storage (`core.storage`)
  before its handle is returned, and each status change (with the job id and
  what the submit cost) is written as it happens. `tasks/get` and
  `tasks/cancel` read and write that row, so any replica (or the same server
  after a restart) answers them.
- Leases: the process running a task holds a lease on its row, renewed every
  third of `CUTOUT_TASK_LEASE_SECONDS`. When a process dies, another one (or
  the restarted server) takes the expired lease over (`maintain`), and
  finishes watching the job by its id; a task whose paid submit had not
  recorded a job id yet is marked failed with a message that it may have
  been charged, and is never submitted again.
- `tasks/cancel` stops the server's polling of cutout.pro (at once on the
  replica that runs the task; at that replica's next lease renewal when
  another replica received the cancel). The upstream job cannot be cancelled
  and its credits are spent; the cancelled task's message says so and names
  the job id to resume with `get_video_result`.
- Task ids carry 192 bits from `secrets`, live `TASK_TTL_MS`, and are bound to
  the caller (`principal.current_principal()`). Every `tasks/*` call checks
  the binding; another caller's task answers exactly like an unknown one
  (-32602 "Task not found"), so its existence is never confirmed.

The package: `current` (what a tool running inside a task sees), `runner` (the background work, what
is written to the storage, leases and adoption), `extension` (the SDK extension: the interception and
the `tasks/*` methods), `params` (the `tasks/*` requests' parameters) and `wire` (the other wire shapes,
imported with the first task, not at start-up).
"""

from cutout_mcp.server.tasks.current import TASK_MAX_WAIT_SECONDS, TaskRecord, begin_task, in_task, set_status
from cutout_mcp.server.tasks.extension import EXTENSION_ID, TasksExtension
from cutout_mcp.server.tasks.params import TaskIdParams

__all__ = [
    "EXTENSION_ID",
    "TASK_MAX_WAIT_SECONDS",
    "TaskIdParams",
    "TaskRecord",
    "TasksExtension",
    "begin_task",
    "in_task",
    "set_status",
]
