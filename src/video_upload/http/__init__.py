"""The HTTP layer: the app factory, tus, the REST API and the web page."""
