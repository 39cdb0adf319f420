"""Side-by-side speed, memory and accuracy measurements behind ``stellar-nb bench``.

One module per benchmark (:data:`stellar_nb.commands.bench.BENCHMARKS` lists them with their
command lines, in :mod:`stellar_nb.commands.bench`): :mod:`~stellar_nb.bench.simulate`, :mod:`~stellar_nb.bench.train`,
:mod:`~stellar_nb.bench.inference`, :mod:`~stellar_nb.bench.dashboard`,
:mod:`~stellar_nb.bench.real_stars` and :mod:`~stellar_nb.bench.library_cv`. Each imports heavy
libraries only inside the functions that need them. The preprocessing comparison is
:func:`stellar_nb.preprocess.naive.compare_speed`, beside the naive implementation it times.
"""

__all__ = []
