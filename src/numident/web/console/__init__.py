"""The web console each server process serves under ``/console/`` for its staff."""
