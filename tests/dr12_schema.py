"""The DR12 SkyServer tables the loopback server answers SQL from, with their real column lists.

The loopback SkyServer (:mod:`loopback`) puts a fixture catalogue into SQLite tables that have
exactly the DR12 columns below, so a query naming a column or table the real database lacks
fails offline as it does online. Column names are matched case-insensitively, as SQL Server does.

Source: the CasJobs/SkyServer schema in the public repository ``sciserver/sqlloader``.
"""

import re

import pandas as pd

__all__ = [
    "SPECOBJALL_COLUMNS",
    "SPP_PARAMS_COLUMNS",
    "TEXT_COLUMNS",
    "build_tables",
    "check_columns",
    "sql_server_message",
]

#: DR12 ``sppParams`` columns, in table order, from the CasJobs/SkyServer schema in the public
#: repository sciserver/sqlloader, ``schema/sql/ssppTables.sql`` (CREATE TABLE sppParams, the
#: DR9+ schema swapped in 2012-05-18; unchanged through DR12).
SPP_PARAMS_COLUMNS = tuple(
    """
    specObjID BESTOBJID FLUXOBJID TARGETOBJID PLATEID sciencePrimary legacyPrimary seguePrimary
    FIRSTRELEASE SURVEY PROGRAMNAME CHUNK PLATERUN MJD PLATE FIBERID RUN2D RUN1D RUNSSPP
    TARGETSTRING PRIMTARGET SECTARGET LEGACY_TARGET1 LEGACY_TARGET2 SPECIAL_TARGET1
    SPECIAL_TARGET2 SEGUE1_TARGET1 SEGUE1_TARGET2 SEGUE2_TARGET1 SEGUE2_TARGET2 SPECTYPEHAMMER
    SPECTYPESUBCLASS FLAG TEFFADOP TEFFADOPN TEFFADOPUNC TEFFHA24 TEFFHD24 TEFFNGS1 TEFFANNSR
    TEFFANNRR TEFFWBG TEFFK24 TEFFKI13 TEFFHA24IND TEFFHD24IND TEFFNGS1IND TEFFANNSRIND
    TEFFANNRRIND TEFFWBGIND TEFFK24IND TEFFKI13IND TEFFHA24UNC TEFFHD24UNC TEFFNGS1UNC
    TEFFANNSRUNC TEFFANNRRUNC TEFFWBGUNC TEFFK24UNC TEFFKI13UNC LOGGADOP LOGGADOPN LOGGADOPUNC
    LOGGNGS2 LOGGNGS1 LOGGANNSR LOGGANNRR LOGGCAI1 LOGGWBG LOGGK24 LOGGKI13 LOGGNGS2IND
    LOGGNGS1IND LOGGANNSRIND LOGGANNRRIND LOGGCAI1IND LOGGWBGIND LOGGK24IND LOGGKI13IND
    LOGGNGS2UNC LOGGNGS1UNC LOGGANNSRUNC LOGGANNRRUNC LOGGCAI1UNC LOGGWBGUNC LOGGK24UNC
    LOGGKI13UNC FEHADOP FEHADOPN FEHADOPUNC FEHNGS2 FEHNGS1 FEHANNSR FEHANNRR FEHCAIIK1 FEHCAIIK2
    FEHCAIIK3 FEHWBG FEHK24 FEHKI13 FEHNGS2IND FEHNGS1IND FEHANNSRIND FEHANNRRIND FEHCAIIK1IND
    FEHCAIIK2IND FEHCAIIK3IND FEHWBGIND FEHK24IND FEHKI13IND FEHNGS2UNC FEHNGS1UNC FEHANNSRUNC
    FEHANNRRUNC FEHCAIIK1UNC FEHCAIIK2UNC FEHCAIIK3UNC FEHWBGUNC FEHK24UNC FEHKI13UNC SNR QA
    CCCAHK CCMGH TEFFSPEC TEFFSPECN TEFFSPECUNC LOGGSPEC LOGGSPECN LOGGSPECUNC FEHSPEC FEHSPECN
    FEHSPECUNC ACF1 ACF1SNR ACF2 ACF2SNR INSPECT ELODIERVFINAL ELODIERVFINALERR ZWARNING
    TEFFIRFM TEFFIRFMIND TEFFIRFMUNC LOGGNGS1IRFM LOGGNGS1IRFMIND LOGGNGS1IRFMUNC FEHNGS1IRFM
    FEHNGS1IRFMIND FEHNGS1IRFMUNC LOGGCAI1IRFM LOGGCAI1IRFMIND LOGGCAI1IRFMUNC FEHCAIIK1IRFM
    FEHCAIIK1IRFMIND FEHCAIIK1IRFMUNC
    """.split()
)
#: DR12 ``SpecObjAll`` columns, from sciserver/sqlloader ``schema/sql/SpectroTables.sql``
#: (CREATE TABLE SpecObjAll). The stored file is the DR17 version; its history dates the eBOSS
#: columns ``eboss_target1``, ``eboss_target2`` and ``eboss_target_id`` to DR14 (2017-04-07), so
#: they are left out. Only the columns up to ``fracNSigma_10`` are modelled here; the later ones
#: (``fracNSigHi_*``, ``spectroFlux_*``, ...) are real but unused by stellar_nb, and a query that
#: names them fails on loopback (a known, conservative gap).
SPECOBJALL_COLUMNS = tuple(
    """
    specObjID bestObjID fluxObjID targetObjID plateID sciencePrimary sdssPrimary legacyPrimary
    seguePrimary segue1Primary segue2Primary bossPrimary bossSpecObjID firstRelease survey
    instrument programname chunk platerun mjd plate fiberID run1d run2d tile designID
    legacy_target1 legacy_target2 special_target1 special_target2 segue1_target1 segue1_target2
    segue2_target1 segue2_target2 boss_target1 eboss_target0 ancillary_target1 ancillary_target2
    thing_id_targeting thing_id primTarget secTarget spectrographID sourceType targetType ra dec
    cx cy cz xFocal yFocal lambdaEff blueFiber zOffset z zErr zWarning class subClass rChi2 DOF
    rChi2Diff z_noqso zErr_noqso zWarning_noqso class_noqso subClass_noqso rChi2Diff_noqso
    z_person class_person comments_person tFile tColumn_0 tColumn_1 tColumn_2 tColumn_3
    tColumn_4 tColumn_5 tColumn_6 tColumn_7 tColumn_8 tColumn_9 nPoly theta_0 theta_1 theta_2
    theta_3 theta_4 theta_5 theta_6 theta_7 theta_8 theta_9 velDisp velDispErr velDispZ
    velDispZErr velDispChi2 velDispNPix velDispDOF waveMin waveMax wCoverage snMedian_u
    snMedian_g snMedian_r snMedian_i snMedian_z snMedian chi68p fracNSigma_1 fracNSigma_2
    fracNSigma_3 fracNSigma_4 fracNSigma_5 fracNSigma_6 fracNSigma_7 fracNSigma_8 fracNSigma_9
    fracNSigma_10
    """.split()
)
#: varchar columns (everything else is numeric); a missing value defaults to "" or 0.
TEXT_COLUMNS = frozenset(
    name.lower()
    for name in """
    FIRSTRELEASE SURVEY PROGRAMNAME CHUNK PLATERUN RUN2D RUN1D RUNSSPP TARGETSTRING
    SPECTYPEHAMMER SPECTYPESUBCLASS FLAG INSPECT instrument sourceType targetType class subClass
    class_noqso subClass_noqso comments_person tFile
    """.split()
)
#: Defaults for columns a fixture does not give: SSPP's nominal flag, else "" or 0.
_DEFAULTS = {"flag": "nnnnn"}


def _table(name, columns, catalogue):
    given = {column.lower(): column for column in catalogue.columns}
    data = {}
    for column in columns:
        source = given.get(column.lower())
        if source is not None:
            data[column] = catalogue[source].to_numpy()
        else:
            default = _DEFAULTS.get(column.lower(), "" if column.lower() in TEXT_COLUMNS else 0)
            data[column] = [default] * len(catalogue)
    return pd.DataFrame(data, index=range(len(catalogue)))


def check_columns(catalogue):
    """Raise ValueError naming every catalogue column that neither DR12 table has."""
    known = {column.lower() for column in (*SPP_PARAMS_COLUMNS, *SPECOBJALL_COLUMNS)}
    unknown = sorted(column for column in catalogue.columns if column.lower() not in known)
    if unknown:
        raise ValueError(
            f"catalogue columns {unknown} are in neither DR12 sppParams nor SpecObjAll"
        )


def build_tables(connection, catalogue):
    """Create ``sppParams``, ``SpecObjAll`` and the ``SpecObj`` view from ``catalogue``.

    Each catalogue column (any case) fills the table columns of that name; every other column
    gets its default. ``SpecObj`` is ``SpecObjAll`` restricted to ``sciencePrimary = 1``, as the
    DR12 view is.

    Raises
    ------
    ValueError
        If a catalogue column is in neither DR12 table (e.g. ``rvadop``, which only the ssppOut
        FITS files have), naming it.
    """
    check_columns(catalogue)
    _table("sppParams", SPP_PARAMS_COLUMNS, catalogue).to_sql("sppParams", connection, index=False)
    _table("SpecObjAll", SPECOBJALL_COLUMNS, catalogue).to_sql(
        "SpecObjAll", connection, index=False
    )
    connection.execute("CREATE VIEW SpecObj AS SELECT * FROM SpecObjAll WHERE sciencePrimary = 1")


def sql_server_message(error):
    """Word an SQLite error the way SQL Server words the same mistake."""
    text = str(error)
    column = re.search(r"no such column: (?:\w+\.)?(\w+)", text)
    if column:
        return f"Invalid column name '{column.group(1)}'."
    table = re.search(r"no such table: (\w+)", text)
    if table:
        return f"Invalid object name '{table.group(1)}'."
    return text
