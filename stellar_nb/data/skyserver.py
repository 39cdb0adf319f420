"""A polite client for the SDSS SkyServer ``SqlSearch`` service (DR12).

:func:`sql_search` sends one SQL query and returns its result table, with these rules, each
checked against the service's public behaviour (see :mod:`stellar_nb.data.sdss` for sources):

- **Permanent errors are not retried**, and the server's own message is reported: any HTTP 4xx
  other than 429, an HTTP 500 whose JSON body holds ``ErrorMessage`` (a SQL Server error such as
  ``Invalid column name 'rvadop'.``), and an HTTP 200 whose CSV is a one-column
  ``error_message`` table (how SkyServer reports e.g. a query that ran out of time).
- **Transient errors are retried** with bounded exponential back-off: connection errors, HTTP
  502/503/504, a bare HTTP 500 (no ``ErrorMessage``: the web tier, not the query, failed) and
  HTTP 429, whose ``Retry-After`` is honoured (capped at :data:`MAX_WAIT` seconds).
- A **read timeout is not retried**: the server builds the whole result before it sends a byte
  and stops a query after 600 s, so a re-run would only cost it another 600 s. The default read
  timeout is a little over that limit; ask for smaller pages if it is reached.
- At most 60 queries a minute (SDSS's request to SkyServer users), through one shared
  :class:`stellar_nb.data.download.RateLimiter`, and a ``stellar_nb/<version>`` User-Agent.
"""

import io
import json
import re
import time

import pandas as pd
import requests

from stellar_nb import config
from stellar_nb.data import download

__all__ = ["LIMITER", "MAX_WAIT", "TIMEOUT", "SkyServerError", "parse_csv", "sql_search"]

#: (connect, read) seconds: the server's 600 s query limit plus a margin for the transfer.
TIMEOUT = (15.0, 630.0)
#: Longest single wait between attempts (back-off or ``Retry-After``), seconds.
MAX_WAIT = download.MAX_WAIT
#: SDSS asks for at most 60 SkyServer queries a minute; shared by every query of this process.
LIMITER = download.RateLimiter(60, 60.0)
_TRANSIENT_STATUS = {429, 500, 502, 503, 504}
_sleep = time.sleep  # one name for tests to replace


class SkyServerError(RuntimeError):
    """The SkyServer SQL service failed or answered something that is not a result table.

    Attributes
    ----------
    permanent : bool
        True when the server rejected the query itself (retrying cannot help).
    """

    def __init__(self, message, *, permanent=False):
        super().__init__(message)
        self.permanent = permanent


def _server_message(response):
    """The ``ErrorMessage`` of a JSON error body, else None."""
    try:
        body = json.loads(response.text)
    except ValueError:
        return None
    for item in body if isinstance(body, list) else [body]:
        if isinstance(item, dict) and item.get("ErrorMessage"):
            return str(item["ErrorMessage"]).strip()
    return None


def parse_csv(text, url):
    """Parse a SkyServer CSV answer (optionally headed ``#Table1``) into text columns.

    Raises
    ------
    SkyServerError
        ``permanent=True`` for a one-column ``error_message`` table (the server's message is
        quoted), and for an answer that is not a table at all (e.g. an HTML page).
    """
    lines = text.lstrip().splitlines()
    if lines and lines[0].startswith("#Table"):
        lines = lines[1:]
    header = lines[0].strip().lower() if lines else ""
    if header == "error_message":
        message = " ".join(" ".join(lines[1:]).split())[:500]
        raise SkyServerError(f"SkyServer at {url} reported an error: {message}", permanent=True)
    if not lines or ("," not in header and not header.isidentifier()):
        snippet = " ".join(text.split())[:300]
        raise SkyServerError(f"{url} did not return a result table: {snippet!r}", permanent=True)
    # everything as text: specObjID can exceed int64 and run2d mixes "26" and "v5_7_0"
    frame = pd.read_csv(io.StringIO("\n".join(lines)), dtype=str, keep_default_na=False)
    frame.columns = [column.strip().lower() for column in frame.columns]
    for column in frame.columns:
        frame[column] = frame[column].str.strip()
    return frame


def sql_search(
    sql, *, base_url=None, timeout=TIMEOUT, retries=3, backoff=1.0, session=None, limiter=None
):
    """Run one SQL query on SkyServer ``SqlSearch`` and return the result as a text frame.

    Parameters
    ----------
    sql : str
        T-SQL for the DR12 database (``SELECT TOP n ...``).
    base_url : str, optional
        SqlSearch endpoint; default ``$STELLAR_NB_SKYSERVER_URL`` or the public DR12 service.
    timeout : float or (float, float)
        Seconds to connect / to wait for the answer; default :data:`TIMEOUT`.
    retries : int
        Further attempts after a transient error (see the module docstring).
    backoff : float
        First back-off in seconds; doubles each attempt, capped at :data:`MAX_WAIT`.
    session : requests.Session, optional
        Reused connection; its User-Agent is set to :data:`stellar_nb.data.download.USER_AGENT`.
    limiter : stellar_nb.data.download.RateLimiter, optional
        Default :data:`LIMITER` (60 queries a minute).

    Returns
    -------
    pandas.DataFrame
        Lower-case column names, every value a stripped string.

    Raises
    ------
    SkyServerError
        With the server's message; ``permanent`` says whether it was the query's fault.
    """
    url = config.service_url("skyserver", base_url)
    limiter = LIMITER if limiter is None else limiter
    own = session is None
    session = requests.Session() if own else session
    session.headers["User-Agent"] = download.USER_AGENT
    try:
        for attempt in range(int(retries) + 1):
            limiter.wait()
            response = None
            try:
                response = session.get(url, params={"cmd": sql, "format": "csv"}, timeout=timeout)
            except requests.ConnectionError as error:
                reason = (
                    f"{type(error).__name__}: {re.sub(r'[?]cmd=[^ ]*', '?cmd=...', str(error))}"
                )
            except requests.Timeout as error:
                raise SkyServerError(
                    f"SkyServer query to {url} timed out ({type(error).__name__}; the server "
                    "stops queries after 600 s): ask for fewer rows per page",
                ) from None
            else:
                if response.status_code == 200:
                    return parse_csv(response.text, url)
                message = _server_message(response)
                if message is not None or response.status_code not in _TRANSIENT_STATUS:
                    shown = message or " ".join(response.text.split())[:300]
                    raise SkyServerError(
                        f"SkyServer at {url} rejected the query (HTTP {response.status_code}): "
                        f"{shown}",
                        permanent=True,
                    )
                reason = f"HTTP {response.status_code}: {' '.join(response.text.split())[:300]}"
            if attempt < int(retries):
                retry_after = None if response is None else response.headers.get("Retry-After")
                _sleep(download.retry_wait(attempt, backoff, retry_after))
        raise SkyServerError(
            f"SkyServer query to {url} failed after {int(retries) + 1} attempts: {reason}"
        )
    finally:
        if own:
            session.close()
