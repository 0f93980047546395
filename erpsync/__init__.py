"""erpsync: keeps an ERP and a Centra store in sync."""

__version__ = "0.1.0"
