"""kundo-gdpr: GDPR erase and export requests by email, handled end to end."""

__version__ = "0.1.0"
