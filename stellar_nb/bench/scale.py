"""``stellar-nb bench scale``: ``predict`` serially and on 1 and 2 Dask workers; a streaming run.

Both measurements use the same model and inputs in one run:

- :func:`throughput`: :func:`stellar_nb.predict.predict_files` over many spectrum files
  (``spec-lite`` files written from the survey's test split), serially in this process and on a
  :func:`stellar_nb.scale.cluster` of 1 and 2 local worker processes; spectra per second, peak
  resident memory of each worker, and whether every table equals the serial one;
- :func:`streaming`: a split table of at least 200,000 spectra (the survey's test rows repeated,
  written row group by row group) predicted on the workers, with the peak memory of this process
  and of each worker, which stays bounded whatever the number of rows.
"""

import contextlib
import resource
import threading
import time
from pathlib import Path

__all__ = ["peak_rss_mib", "repeat_split", "streaming", "throughput"]


def peak_rss_mib():
    """Peak resident memory of the calling process so far, in MiB (Linux ``ru_maxrss``)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


@contextlib.contextmanager
def _sampled_rss():
    """Sample this process's resident memory every 50 ms; yields a dict whose ``peak_mib`` is set on exit."""
    import psutil

    process, result, stop = psutil.Process(), {"peak_mib": 0.0}, threading.Event()

    def sample():
        while not stop.wait(0.05):
            result["peak_mib"] = max(result["peak_mib"], process.memory_info().rss / 2**20)

    thread = threading.Thread(target=sample, daemon=True)
    result["start_mib"] = process.memory_info().rss / 2**20
    thread.start()
    try:
        yield result
    finally:
        stop.set()
        thread.join()


def _run(model, paths, workers, *, warm_up=True):
    """``(table, seconds, worker peak MiB list)`` of one predict run (``workers=0``: serial).

    With ``warm_up`` the first file is predicted first in each process, untimed, so that the
    imports are not counted.
    """
    from stellar_nb import predict, scale

    if workers == 0:
        if warm_up:
            predict.predict_files(model, paths[:1])
        start = time.perf_counter()
        table, _ = predict.predict_files(model, paths)
        return table, time.perf_counter() - start, []
    with scale.cluster(f"local:{workers}") as client:
        if warm_up:
            client.run(predict.predict_files, model, paths[:1])
        start = time.perf_counter()
        table, _ = predict.predict_files(model, paths, client=client)
        seconds = time.perf_counter() - start
        peaks = sorted(client.run(peak_rss_mib).values())
    return table, seconds, peaks


def throughput(model_dir, survey, folder, n_files, workers=(0, 1, 2)):
    """Spectra per second of ``predict`` over ``n_files`` files, serial and on Dask workers.

    Parameters
    ----------
    model_dir : str or pathlib.Path or None
        Model directory (None: the shipped pretrained model).
    survey : str or pathlib.Path
        Survey folder whose test split the files are written from.
    folder : str or pathlib.Path
        Where the ``spec-*.fits`` files are written.
    n_files : int
        Files to predict (at most the test split's rows).
    workers : sequence of int
        0 for the serial path, else the number of local worker processes.

    Returns
    -------
    list of dict
        One per entry of ``workers``: ``workers``, ``spectra``, ``seconds``, ``rate`` (spectra
        per second), ``speedup`` (against the first entry), ``worker_peak_mib`` and ``identical``
        (the table equals the first entry's, number for number).
    """
    import pandas as pd

    from stellar_nb import model_directory
    from stellar_nb.data import tables
    from stellar_nb.simulate import observe

    model = model_directory.load(model_dir)
    paths = observe.write_fits(Path(folder), tables.split_path(survey, "test"), int(n_files))
    results, reference = [], None
    for count in workers:
        table, seconds, peaks = _run(model, paths, count)
        if reference is None:
            reference, first = table, seconds
        try:
            pd.testing.assert_frame_equal(table, reference, check_exact=True)
            identical = True
        except AssertionError:
            identical = False
        results.append(
            {
                "workers": count,
                "spectra": len(table),
                "seconds": seconds,
                "rate": len(table) / seconds,
                "speedup": first / seconds,
                "worker_peak_mib": peaks,
                "identical": identical,
            }
        )
    return results


def repeat_split(survey, path, rows, *, row_group_size=1024):
    """Write a split table of ``rows`` spectra by repeating the survey's test rows.

    It is written one row group at a time (pyarrow), so memory stays that of the test split.

    Parameters
    ----------
    survey : str or pathlib.Path
        Survey folder with ``test.parquet``.
    path : str or pathlib.Path
        Output; its name must be a split's (``test.parquet``) for ``predict`` to take it.
    rows : int
    row_group_size : int

    Returns
    -------
    pathlib.Path
    """
    import pyarrow.parquet as pq

    from stellar_nb.data import tables

    source = pq.read_table(tables.split_path(survey, "test"))
    written = 0
    with pq.ParquetWriter(path, source.schema) as writer:
        while written < rows:
            chunk = source.slice(0, min(len(source), rows - written))
            writer.write_table(chunk, row_group_size=row_group_size)
            written += len(chunk)
    return Path(path)


def streaming(model_dir, survey, folder, rows, workers=2):
    """Predict a split table of ``rows`` spectra on Dask workers with bounded memory.

    Parameters
    ----------
    model_dir : str or pathlib.Path or None
    survey : str or pathlib.Path
    folder : str or pathlib.Path
        Where the table is written (:func:`repeat_split`).
    rows : int
    workers : int

    Returns
    -------
    dict
        ``rows``, ``seconds``, ``rate``, ``worker_peak_mib`` (each worker's peak),
        ``client_peak_mib`` and ``client_start_mib`` (this process, sampled), ``table_mib`` (the
        result table in memory), ``input_gib`` (the table on disk).
    """
    from stellar_nb import model_directory

    model = model_directory.load(model_dir)
    path = repeat_split(survey, Path(folder) / "test.parquet", int(rows))
    with _sampled_rss() as memory:
        table, seconds, peaks = _run(model, [path], int(workers), warm_up=False)
    return {
        "rows": len(table),
        "seconds": seconds,
        "rate": len(table) / seconds,
        "worker_peak_mib": peaks,
        "client_peak_mib": memory["peak_mib"],
        "client_start_mib": memory["start_mib"],
        "table_mib": table.memory_usage(deep=True).sum() / 2**20,
        "input_gib": path.stat().st_size / 2**30,
    }
