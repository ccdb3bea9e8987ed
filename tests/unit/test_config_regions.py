"""The messenger's regions: which numbers are served and how national forms are read."""

from __future__ import annotations

import pytest

from numident.config import load_settings
from numident.errors import ConfigurationError


def test_the_one_served_region_reads_national_forms() -> None:
    """By default only Russia is served, so national forms are read as Russian."""
    assert load_settings(None).messenger.national_region == "RU"


def test_several_regions_without_a_default_read_no_national_form() -> None:
    """With two regions and no default_region, there is no region to read 8... in."""
    settings = load_settings(None, messenger={"allowed_regions": ["RU", "KZ"]})
    assert settings.messenger.national_region is None
    chosen = load_settings(None, messenger={"allowed_regions": ["RU", "KZ"],
                                            "default_region": "KZ"})
    assert chosen.messenger.national_region == "KZ"


@pytest.mark.parametrize(("messenger", "named"), [
    ({"default_region": "XX"}, "messenger.default_region"),
    ({"allowed_regions": ["RU", "ZZ"]}, "messenger.allowed_regions"),
    ({"allowed_regions": ["RU"], "default_region": "KZ"}, "not one of allowed_regions"),
])
def test_bad_regions_are_configuration_errors_naming_the_key(messenger: dict[str, object],
                                                             named: str) -> None:
    """An unknown region, or a default that is not served, stops the start naming the key."""
    with pytest.raises(ConfigurationError, match=named):
        load_settings(None, messenger=messenger)
