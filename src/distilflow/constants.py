"""Names shared by rows and steps (`distilabel.constants`)."""

__all__ = ["DISTILABEL_METADATA_KEY"]

#: the column that holds each row's raw inputs, raw outputs and statistics, per step
DISTILABEL_METADATA_KEY = "distilabel_metadata"
