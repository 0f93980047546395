"""ERP master data in: file importers (CSV, JSON Lines), the SQL source, and the per-entity layouts
they share (``layouts.py``). Everything lands in the staging tables (``store/staging.py``); rows
that cannot be loaded are reported with file, line and reason and parked (``kind="import"``).
"""
