"""The upload page the service serves at `/`: plain HTML, CSS and JavaScript, no build step.

The page uploads with tus-js-client, which the service serves from `web/node_modules` (installed
by `make setup`) at `/ui/vendor/tus.min.js`; nothing is loaded from a CDN.
"""
