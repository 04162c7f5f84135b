"""One Lambda invocation in this process, started as `python3.13 -I -S -B lambda_process.py REQUEST`.

The runner (local/invoke.py) starts a fresh Python 3.13 for every invocation, isolated (-I: no
PYTHON* variables, no script folder on the path) and without site-packages (-S), so the path is
exactly Lambda's: the function's built folder (/var/task), then the layers merged as /opt/python,
then the standard library. Nothing of the project's virtualenv is importable: a library missing
from the dependencies layer fails here as it would on Lambda. -B stands in for Lambda's read-only
filesystem: nothing is written back, so a layer without bytecode is compiled on every start, and
every module compiled from source is recorded, so a test can insist that the layers ship bytecode.

Only the standard library is imported here, before the handler: this file is not on the path the
handler sees. REQUEST is a JSON file: {task, opt, handler, function_name, memory_mb, timeout_s,
event, result}; the handler's own output (its logs) goes to stdout/stderr as on Lambda, and the
response, or Lambda's error shape, is written to the file named by `result` together with the
init/invoke durations and the compiled modules.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import json
import os
import sys
import time
import traceback
import uuid
from typing import Any

_compiled: list[str] = []


def _record_compiles() -> None:
    """Note every module compiled from source (no usable bytecode beside it)."""
    loader = importlib.machinery.SourceFileLoader
    original = loader.source_to_code

    def source_to_code(self: Any, data: Any, path: Any, *args: Any, **kwargs: Any) -> Any:
        _compiled.append(str(path))
        return original(self, data, path, *args, **kwargs)

    loader.source_to_code = source_to_code  # type: ignore[method-assign]


class Context:
    """The attributes and method of Lambda's context object that handlers and Powertools use."""

    def __init__(self, name: str, memory_mb: int, timeout_s: float, region: str) -> None:
        self.function_name = name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{region}:123456789012:function:{name}"
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = "local/[$LATEST]local"
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _error(exc: BaseException, error_type: str | None = None) -> dict[str, Any]:
    """Lambda's answer for an unhandled exception."""
    return {
        "errorMessage": str(exc),
        "errorType": error_type or type(exc).__name__,
        "stackTrace": traceback.format_tb(exc.__traceback__),
    }


def main(request_path: str) -> int:
    with open(request_path) as fh:
        request: dict[str, Any] = json.load(fh)
    opt = request["opt"]
    # Lambda's order: the function, then /opt/python/lib/python3.x/site-packages, then /opt/python.
    site = os.path.join(opt, "lib", f"python{sys.version_info[0]}.{sys.version_info[1]}", "site-packages")
    sys.path[:0] = [request["task"], site, opt]
    _record_compiles()
    with open(request["event"]) as fh:
        event = json.load(fh)
    module_name, _, function = request["handler"].rpartition(".")
    outcome: dict[str, Any] = {}
    started = time.perf_counter()
    try:
        handler = getattr(importlib.import_module(module_name), function)
    except ImportError as exc:
        outcome["error"] = _error(exc, "Runtime.ImportModuleError")
        outcome["error"]["errorMessage"] = f"Unable to import module '{module_name}': {exc}"
    except AttributeError as exc:
        outcome["error"] = _error(exc, "Runtime.HandlerNotFound")
    except Exception as exc:  # as Lambda: any error during init fails the invocation
        outcome["error"] = _error(
            exc, "Runtime.UserCodeSyntaxError" if isinstance(exc, SyntaxError) else None
        )
    outcome["init_ms"] = (time.perf_counter() - started) * 1000
    if "error" not in outcome:
        region = os.environ.get("AWS_REGION", "us-east-1")
        context = Context(request["function_name"], request["memory_mb"], request["timeout_s"], region)
        began = time.perf_counter()
        try:
            outcome["response"] = handler(event, context)
        except Exception as exc:
            outcome["error"] = _error(exc)
        outcome["duration_ms"] = (time.perf_counter() - began) * 1000
    if "error" in outcome:  # Lambda logs it too
        print(f"[ERROR] {outcome['error']['errorType']}: {outcome['error']['errorMessage']}", file=sys.stderr)
    sys.stdout.flush()
    outcome["compiled"] = _compiled
    with open(request["result"], "w") as fh:
        json.dump(outcome, fh, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
