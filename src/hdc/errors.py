"""Errors in what the user gave us (data, config, files): entry points report them in one line, no traceback."""


class HdcError(Exception):
    pass


class DataError(HdcError, ValueError):
    """The dataset does not match the configuration: a missing dataset, split or column, an unknown label."""
