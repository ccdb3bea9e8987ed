"""numident: the identification exchange between instant messengers and mobile operators."""

__version__ = "0.1.0"
