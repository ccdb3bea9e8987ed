"""Every scenario of every CAMARA feature file, against a real gateway on loopback.

The tests are made from the feature files (:func:`camara_binding.bind`); the step definitions
are in :mod:`camara_steps` and :mod:`camara_checks`, the assets and the gateway in the conftest.
"""

from __future__ import annotations

from camara_binding import bind
from camara_checks import *  # noqa: F403 - the step definitions are fixtures found by name
from camara_steps import *  # noqa: F403

SCENARIOS = bind(globals())
