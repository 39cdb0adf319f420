"""Lazy attributes for the package's curated ``__init__`` modules.

``import stellar_nb`` and ``import stellar_nb.data`` stay cheap: a public name is imported from its
module only when it is first used (the module ``__getattr__`` of PEP 562, as in scientific
Python's ``lazy_loader``). So ``stellar_nb.train`` loads TensorFlow on first use, not before.
"""

import importlib
import sys

__all__ = ["attach"]


def attach(package, names):
    """Return ``(__getattr__, __dir__)`` for a package that exports ``names`` lazily.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    names : dict
        ``{public name: "module"}`` (a module below the package, e.g. ``"tables"``, whose attribute
        of the same name is exported) or ``{public name: "module:attribute"}``; an empty attribute
        (``"module:"``) exports the module itself.

    Returns
    -------
    tuple of callable
        Assign them to the package's ``__getattr__`` and ``__dir__``.

    Examples
    --------
    >>> __getattr__, __dir__ = attach(__name__, {"read_split": "tables"})  # doctest: +SKIP
    """

    def __getattr__(name):
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module_name, separator, attribute = names[name].partition(":")
        if not separator:
            attribute = name
        module = importlib.import_module(f"{package}.{module_name}")
        return module if not attribute else getattr(module, attribute)

    def __dir__():
        return sorted(set(names) | set(vars(sys.modules[package])))

    return __getattr__, __dir__
