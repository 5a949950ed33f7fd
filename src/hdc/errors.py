"""Errors in what the user gave us (data, config, files): entry points report them in one line, no traceback."""

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from omegaconf.errors import MissingMandatoryValue


class HdcError(Exception):
    pass


class DataError(HdcError, ValueError):
    """The dataset does not match the configuration: a missing dataset, split or column, an unknown label."""


@contextmanager
def reported_as_one_line(log: logging.Logger) -> Iterator[None]:
    """For entry points: an HdcError, or a required setting left unset (`???` in the config), becomes one
    logged line and exit status 1."""
    try:
        yield
    except HdcError as error:
        log.error(error)
        sys.exit(1)
    except MissingMandatoryValue as error:
        log.error(f"{error.full_key} is required: add {error.full_key}=... to the command")
        sys.exit(1)
