"""The ``aerotensor`` command line: ``python -m aerotensor ARGS`` and the
``aerotensor`` console script a ``pip install`` puts on the PATH.

Both run the Rust CLI inside the extension module — the same program as the
``aerotensor`` binary: every command, the same output and exit codes, and
Ctrl-C removes the temporaries of a write in progress. ``aerotensor --help``
lists the commands; docs/CLI.md describes them.
"""

import sys


def main() -> int:
    """Runs ``aerotensor`` on ``sys.argv[1:]`` and returns its exit code."""
    from aerotensor import _aerotensor

    # Whatever Python buffered goes out before the CLI writes to the same
    # file descriptors.
    sys.stdout.flush()
    sys.stderr.flush()
    # The CLI names itself `aerotensor` in usage and errors however it was
    # started (`python -m aerotensor` has `.../__main__.py` as argv[0]).
    # Arguments go through as the OS gave them (undecodable bytes survive
    # Python's surrogateescape round trip).
    return _aerotensor._cli_main(["aerotensor", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
