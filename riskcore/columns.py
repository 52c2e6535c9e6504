"""Former home of the columnar book; kept so that older imports work.  See :mod:`riskcore.table`."""
from .table import FORMAT_VERSION, SCHEMA, TABLES, BookFormatError, BookTable, write_parquet  # noqa: F401


def read_parquet(directory):
    """The tables of a book folder (validated), as a dict of DataFrames."""
    return BookTable.read_parquet(directory).frames()
