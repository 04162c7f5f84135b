"""One Lambda "container" for the gateway: reads invocations on stdin, answers on stdout.

The gateway keeps a pool of these processes so that API requests run side by side, as Lambda runs
concurrent invocations in separate containers. In one process they could not: Powertools' resolver
keeps the current event on the module's app object, so two requests in flight would share it.

Protocol, JSON lines: {"module", "handler", "name", "timeout", "event"} in; {"received": true} out
as soon as it is read, then {"result": ...} or {"error": message, "type": exception class} out.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from typing import Any

from local.emulator import exit_with_parent
from local.runtime import Handler, LambdaContext


def main() -> int:
    import warnings

    # With metrics disabled locally, Powertools warns on every flush: noise among make run's lines.
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    exit_with_parent()
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    # Whatever a handler prints (Powertools logs to stdout) goes to stderr, never into the replies.
    os.dup2(2, 1)
    handlers: dict[tuple[str, str], Handler] = {}
    for line in sys.stdin:
        request = json.loads(line)
        # The receipt: past this point the gateway never sends the request elsewhere.
        replies.write('{"received": true}\n')
        replies.flush()
        reply: dict[str, Any]
        try:
            key = (request["module"], request["handler"])
            if key not in handlers:
                handlers[key] = getattr(importlib.import_module(key[0]), key[1])
            context = LambdaContext(request["name"], int(request["timeout"]))
            reply = {"result": handlers[key](request["event"], context)}
        except Exception as exc:  # the invocation failed; the container lives on, as Lambda's does
            reply = {"error": str(exc), "type": type(exc).__name__}
        replies.write(json.dumps(reply, default=str) + "\n")
        replies.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
