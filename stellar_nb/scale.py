"""Scale-out with Dask: a cluster for the batch commands and an ordered, bounded map over it.

``stellar-nb predict --dask ADDRESS`` and ``stellar-nb preprocess --dask ADDRESS`` cut their work
in partitions (spectrum files in groups, Parquet row groups) and run them on the workers of a
:mod:`distributed` cluster: ``local:N`` starts a :class:`distributed.LocalCluster` of ``N`` worker
processes on this machine, ``tcp://HOST:PORT`` joins a scheduler that is already running (started
by ``dask scheduler``, ``dask-jobqueue`` on SLURM, or the Dask Helm chart on Kubernetes).

:func:`ordered_map` sends each worker the shared state of a run (a model, the trust checks) once,
keeps a bounded number of partitions in flight, and yields the results in input order, so the
caller writes the same output as the serial loop over the same partitions.
"""

import contextlib
import itertools
import logging

__all__ = ["cluster", "ordered_map", "parse_address"]


def parse_address(address):
    """Check a ``--dask`` address: ``"local:N"`` or ``"tcp://HOST:PORT"``.

    Parameters
    ----------
    address : str

    Returns
    -------
    int or str
        The number of local worker processes, or the scheduler address.

    Raises
    ------
    ValueError
        For any other form, or ``local:N`` with ``N`` not a positive integer.

    Examples
    --------
    >>> parse_address("local:2")
    2
    >>> parse_address("tcp://10.0.0.5:8786")
    'tcp://10.0.0.5:8786'
    """
    address = str(address).strip()
    if address.startswith("local:"):
        count = address.removeprefix("local:")
        if not count.isdigit() or int(count) < 1:
            raise ValueError(f"--dask {address!r}: local:N needs a positive number of workers N")
        return int(count)
    if address.startswith("tcp://") and address.rpartition(":")[2].isdigit():
        return address
    raise ValueError(
        f"--dask {address!r}: give local:N (N worker processes here) or tcp://HOST:PORT "
        "(a running Dask scheduler)"
    )


@contextlib.contextmanager
def cluster(address, *, timeout=30):
    """A :class:`distributed.Client` for ``address``, closed (with its local cluster) on exit.

    Parameters
    ----------
    address : str
        ``"local:N"``: a :class:`distributed.LocalCluster` of ``N`` single-threaded worker
        processes (its dashboard on a free port, where Bokeh is installed);
        ``"tcp://HOST:PORT"``: join that running scheduler.
    timeout : float
        Seconds to wait for the scheduler to answer.

    Yields
    ------
    distributed.Client

    Raises
    ------
    ValueError
        For an address of another form (:func:`parse_address`).
    OSError
        If the scheduler cannot be reached within ``timeout``.

    Examples
    --------
    >>> with cluster("local:2") as client:  # doctest: +SKIP
    ...     print(len(client.nthreads()))
    2
    """
    import distributed

    target = parse_address(address)
    if isinstance(target, str):
        with distributed.Client(target, timeout=timeout) as client:
            yield client
        return
    with (
        distributed.LocalCluster(
            n_workers=target,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            silence_logs=logging.ERROR,
        ) as local,
        distributed.Client(local, timeout=timeout) as client,
    ):
        yield client


def ordered_map(client, function, partitions, *, shared=None, in_flight=None):
    """Yield ``function(shared, partition)`` for each partition, computed on the workers, in order.

    ``shared`` is sent to every worker once (:meth:`distributed.Client.scatter` with
    ``broadcast=True``) and each worker deserialises it once, however many partitions it runs.
    At most ``in_flight`` partitions are submitted or held finished-but-not-yet-yielded at any
    time, so memory stays bounded whatever the number of partitions: a slow first partition
    holds back the results after it, not the submission of unbounded work.

    Parameters
    ----------
    client : distributed.Client
    function : callable
        ``function(shared, partition)``; must be importable on the workers (a module-level
        function of an installed package).
    partitions : iterable
        Consumed lazily.
    shared : object, optional
        State every partition needs (a model), sent once per worker.
    in_flight : int, optional
        Bound on partitions in flight (default: twice the cluster's worker threads).

    Yields
    ------
    object
        Each partition's result, in the order of ``partitions``.

    Raises
    ------
    ValueError
        If ``in_flight`` is not positive.
    Exception
        Whatever ``function`` raised for a partition (the first one, in input order).
    """
    import distributed

    limit = int(in_flight) if in_flight is not None else 2 * sum(client.nthreads().values())
    if limit < 1:
        raise ValueError(f"in_flight must be a positive integer, got {in_flight}")
    shared = client.scatter(shared, broadcast=True, hash=False)
    pending, finished = {}, {}
    source = enumerate(partitions)
    completed = distributed.as_completed()

    def submit():
        room = max(0, limit - len(pending) - len(finished))
        for index, partition in itertools.islice(source, room):
            future = client.submit(function, shared, partition, pure=False)
            pending[future.key] = index
            completed.add(future)

    submit()
    following = 0
    for future in completed:
        index = pending.pop(future.key)
        finished[index] = future
        while following in finished:
            result = finished.pop(following).result()
            following += 1
            yield result
        submit()
