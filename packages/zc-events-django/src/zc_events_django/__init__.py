"""Django integration for zc-events: settings, DRF views and viewsets as handlers, a worker command."""
