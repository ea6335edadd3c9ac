"""The CLI's commands, one module per subject, registered on the app in :mod:`technic.cli`:
argument parsing and presentation only; the work is in :mod:`technic.jobs`."""
