"""Older names of builders in ``tests.factories``, kept for tests not yet moved; new tests import that."""

from tests.factories import ALLOCATION_T0 as T0
from tests.factories import make_channel, make_pool, make_static, next_e164, pool_numbers

__all__ = ["T0", "make_channel", "make_pool", "make_static", "next_e164", "pool_numbers"]
