"""The HTTP API and web page of ``technic serve`` (FastAPI): stored scans and symbols read
through :mod:`technic.store.browse` and :mod:`technic.jobs.browse`, scans started through
:mod:`technic.jobs.scan` in worker threads and streamed as Server-Sent Events. See docs/api.md.
"""
