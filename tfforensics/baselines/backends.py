"""Where the grid points run: joblib's local backend (loky processes) or a Dask cluster.

``--backend dask --scheduler tcp://HOST:8786`` sends the points to a running Dask scheduler
(``dask scheduler`` plus ``dask worker`` processes, or any cluster manager: dask-jobqueue,
dask-kubernetes, ...) through joblib's Dask backend; without ``--scheduler`` a
``LocalCluster`` is started in this process (threads only, no network), which is mainly a
way to try the backend. Results are written by this process, point by point, exactly as
with the local backend, so scores, the best point and resuming do not depend on the backend.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os

from tfforensics.errors import UserError

BACKENDS = ("local", "dask")
INSTALL = 'pip install "tfforensics[dask]"'
#: How long to try reaching a scheduler before giving up.
CONNECT_TIMEOUT = "20s"


@dataclasses.dataclass
class Backend:
    """An open backend: ``n_jobs`` for ``joblib.Parallel`` and the context that routes it."""

    name: str
    n_jobs: int | None
    scheduler: str | None = None

    def parallel(self):
        """Context for the ``joblib.Parallel`` calls that should run on this backend."""
        if self.name == "local":
            return contextlib.nullcontext()
        import joblib

        return joblib.parallel_config(backend="dask")

    def describe(self) -> dict:
        return {"backend": self.name, "scheduler": self.scheduler} if self.name != "local" else {"backend": "local"}


@contextlib.contextmanager
def open_backend(backend: str = "local", scheduler: str | None = None, n_jobs: int | None = 1):
    """Yield a :class:`Backend`; for Dask, connect to ``scheduler`` (or start a local cluster) first.

    With Dask, ``n_jobs`` of 1 or None means all the cluster's worker threads (-1).
    """
    if backend not in BACKENDS:
        raise UserError(f"--backend must be one of {', '.join(BACKENDS)}. Received: --backend {backend}")
    if backend == "local":
        if scheduler:
            raise UserError("--scheduler names a Dask scheduler; add --backend dask or drop --scheduler.")
        yield Backend("local", n_jobs)
        return
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as error:
        raise UserError(f"--backend dask needs Dask, which is not installed: {INSTALL} "
                        "(or use --backend local).") from error
    jobs = -1 if n_jobs in (None, 1) else n_jobs
    with contextlib.ExitStack() as stack:
        if scheduler:
            try:
                client = stack.enter_context(Client(scheduler, timeout=CONNECT_TIMEOUT))
            except (OSError, TimeoutError, ValueError) as error:
                raise UserError(f"--scheduler {scheduler}: cannot connect to a Dask scheduler there ({error}); "
                                "start one (`dask scheduler`, then `dask worker ADDRESS`) or fix the address.") from error
            address = scheduler
        else:
            threads = n_jobs if n_jobs and n_jobs > 1 else (os.cpu_count() or 1)
            cluster = stack.enter_context(LocalCluster(n_workers=1, threads_per_worker=threads, processes=False,
                                                       dashboard_address=None))
            client = stack.enter_context(Client(cluster))
            address = "local"
        try:
            client.wait_for_workers(1, timeout=60)
        except TimeoutError as error:
            raise UserError(f"--scheduler {address}: the Dask scheduler has no workers after 60 s; start some "
                            f"(`dask worker {address}`).") from error
        yield Backend("dask", jobs, address)
