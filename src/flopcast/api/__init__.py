"""Typed requests and results, and the functions that answer them: what the command line
(flopcast.cli) and the web API (flopcast.web) share. One module per command; each has a
``…Request`` (the command's options, snake_case), a ``…Result`` (what ``--json`` prints) and a
``run_…(request)``. Importing this package loads pydantic only; a command's module loads
the catalogs and workloads it needs when it runs.
"""
