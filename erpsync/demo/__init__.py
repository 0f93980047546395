"""``erpsync demo``: the simulator, the daemon's own jobs and the bundled sample ERP data, and the
check that Centra ended up equal to the ERP (``verify``)."""
