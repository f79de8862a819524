"""What the commands print: progress bars on stderr, and the exit statuses."""

from __future__ import annotations

import sys
from typing import Callable

EXIT_USAGE = 2


EXIT_FAILED = 1


EXIT_INTERRUPTED = 130


EXIT_TERMINATED = 143  # 128 + SIGTERM, as shells report a process ended by it


def _file_name_bytes(error: UnicodeError) -> tuple[str | bytes, int]:
    """A file name's bytes that were not text in the file system's encoding (Python holds them as
    lone surrogates) go out as those bytes, as the shell shows the name; other characters the
    terminal cannot show are escaped, never an error."""
    import codecs

    if isinstance(error, UnicodeEncodeError):
        chunk = error.object[error.start:error.end]
        if all("\udc80" <= char <= "\udcff" for char in chunk):
            return bytes(ord(char) - 0xDC00 for char in chunk), error.end
    return codecs.backslashreplace_errors(error)


def print_names_as_given() -> None:
    """stdout and stderr write file names that are not UTF-8 (Latin-1 ones, say) as their bytes,
    not as ``\\udce9``, and never fail on a character they cannot encode."""
    import codecs

    codecs.register_error("impasto.names", _file_name_bytes)
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="impasto.names")
            except (ValueError, OSError):  # closed or not a text stream of its own
                pass


class Bar:
    """A tqdm bar made at its first update, so that an error before any work shows no empty bar."""

    def __init__(self, quiet: bool, unit: str, total: int | None = None) -> None:
        self.quiet, self.unit, self.total = quiet, unit, total
        self._bar = None

    def show(self, done: int, total: int | None = None, postfix: str | None = None) -> None:
        if self.quiet:
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=total or self.total, unit=self.unit, dynamic_ncols=True, file=sys.stderr)
        if total is not None:
            self._bar.total = total
        if postfix is not None:
            self._bar.set_postfix_str(postfix, refresh=False)
        self._bar.update(done - self._bar.n)

    def message(self, text: str) -> None:
        """A line on stderr that does not break the bar."""
        if self._bar is not None:
            self._bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def progress_bar(quiet: bool) -> tuple[Callable, Callable[[], None]]:
    """A bar showing pyramid level and loss terms; returns (update(progress), close())."""
    bar = Bar(quiet, "it")

    def update(progress) -> None:
        t = progress.terms
        level = f"level {progress.level}/{progress.levels} {progress.image.shape[-1]}x{progress.image.shape[-2]} "
        bar.show(progress.iteration, progress.iterations,
                 level + " ".join(f"{name} {value:.3g}" for name, value in t.items() if name != "total"))

    return update, bar.close
