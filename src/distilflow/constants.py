"""Names shared by rows and steps (`distilabel.constants`)."""

__all__ = ["DISTILABEL_METADATA_KEY", "DISTISET_ARTIFACTS_FOLDER", "DISTISET_CONFIG_FOLDER"]

#: the column that holds each row's raw inputs, raw outputs and statistics, per step
DISTILABEL_METADATA_KEY = "distilabel_metadata"

#: in a Distiset's folder: the card, pipeline.yaml and pipeline.log; and the steps' artifacts
DISTISET_CONFIG_FOLDER = "distiset_configs"
DISTISET_ARTIFACTS_FOLDER = "artifacts"
