"""The ``impasto`` command: a thin layer over the API.

User mistakes print one line (``impasto: error: FILE: problem``) and exit with status 2;
Ctrl-C writes the current image and exits with 130 (SIGTERM: 143), also while the command starts.
"""

from __future__ import annotations

import gc
import signal
import sys
import threading
from typing import Sequence

from impasto.cli.commands import (cmd_compress, cmd_demo, cmd_dream, cmd_export, cmd_layers, cmd_methods, cmd_models,
                                  cmd_score_video, cmd_serve, cmd_styles, cmd_train)
from impasto.cli.options import flag_for, options_from, request_from  # noqa: F401 - the package's API
from impasto.cli.output import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_TERMINATED, EXIT_USAGE, print_names_as_given
from impasto.cli.paint import cmd_stylize, cmd_video
from impasto.cli.parser import build_parser
from impasto.core.errors import ImpastoError


_terminated: list[int] = []
_noted: list[int] = []  # stops that came while the command was starting


def _on_terminate(signum: int, frame: object) -> None:
    """SIGTERM (kill, systemd, container stops) is handled like Ctrl-C: finished work is saved."""
    _terminated.append(signum)
    raise KeyboardInterrupt


def _note_stop(signum: int, frame: object) -> None:
    """While the libraries load, a stop is noted, not raised: an exception inside an import can be
    swallowed there (PyTorch loading NumPy drops it) or leave a module half made."""
    _noted.append(signum)


def _handle_stops() -> None:
    """From now on Ctrl-C and SIGTERM stop the work (keeping what is done); one that came while
    the command started stops it here."""
    if threading.current_thread() is not threading.main_thread():
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _on_terminate)
    if _noted:
        _terminated.extend(signum for signum in _noted if signum == signal.SIGTERM)
        raise KeyboardInterrupt


COMMANDS = {"stylize": cmd_stylize, "dream": cmd_dream, "compress": cmd_compress, "methods": cmd_methods, "styles": cmd_styles, "demo": cmd_demo, "layers": cmd_layers, "train": cmd_train, "models": cmd_models,
            "export": cmd_export, "video": cmd_video, "score-video": cmd_score_video,
            "serve": cmd_serve}


def main(argv: Sequence[str] | None = None) -> int:
    # Ctrl-C (SIGINT) stops work and keeps what is done, even when a shell started us in the
    # background with SIGINT ignored (then `kill -INT` is how a long training is stopped cleanly).
    # The handlers come first, before the parser imports PyTorch: a stop while the libraries load
    # is noted and ends the command once they are loaded, like any other stop, without a traceback.
    _terminated.clear()
    _noted.clear()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _note_stop)
        signal.signal(signal.SIGTERM, _note_stop)
    if argv is None:
        print_names_as_given()
    try:
        code = _run(argv)
    except KeyboardInterrupt:  # while starting (importing, parsing): nothing was made yet
        print("impasto: interrupted before any image was made", file=sys.stderr)
        code = EXIT_INTERRUPTED
    if argv is None and threading.current_thread() is threading.main_thread():
        # the command is over: a late signal ends the process as that signal, not as a traceback
        # in the interpreter's shutdown
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    return EXIT_TERMINATED if code == EXIT_INTERRUPTED and _terminated else code


def _run(argv: Sequence[str] | None) -> int:
    command_line = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(light=not argv or argv[0].startswith("-"))  # no command yet: no PyTorch
    _handle_stops()
    try:
        args = parser.parse_args(argv)
        args.argv = argv  # for --record
    except SystemExit as exc:  # --help, --version, or a usage error already printed on one line
        return int(exc.code or 0)
    if command_line:
        # what is imported by now (PyTorch) lives as long as the process: the collector need not
        # walk it again, nor at the end, which made every command measurably longer (docs/figures.md)
        gc.freeze()
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return COMMANDS[args.command](args)
    except ImpastoError as exc:
        flag = flag_for(parser, args.command, exc.parameter)
        print(f"impasto: error: {flag + ': ' if flag and exc.path is None else ''}{exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # a folder that cannot be made, a full disk: the file and the reason, no traceback
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"impasto: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    except MemoryError:
        print("impasto: error: out of memory; lower --size (or use --tile-size)", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("impasto: interrupted before any image was made", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
