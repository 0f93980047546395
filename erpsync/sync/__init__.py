"""The jobs: pull events from Centra, push ERP masters to Centra. They run without the daemon."""
