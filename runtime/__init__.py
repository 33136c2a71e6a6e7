"""Process wiring shared by the worker, the starter and the HTTP service: settings and clients."""
