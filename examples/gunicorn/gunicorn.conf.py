# gunicorn's configuration for a service that uses vigil (README: "Running in production").
# Run with PROMETHEUS_MULTIPROC_DIR set, to an empty folder only this server uses:
#   PROMETHEUS_MULTIPROC_DIR=/run/myservice/metrics gunicorn -c gunicorn.conf.py service:app
from vigil.gunicorn import child_exit, logconfig_dict, on_starting, when_ready  # noqa: F401

worker_class = "uvicorn_worker.UvicornWorker"  # an ASGI app (the exporter is FastAPI)
workers = 4
bind = "127.0.0.1:8000"
