"""The CAMARA / GSMA Open Gateway APIs that the operator gateway serves from its registry.

Each API is one module with one router; :mod:`numident.camara.app` mounts them, serves each
API's own OpenAPI document, and lists the versions served. They share the gateway's OAuth2
tokens (a scope per operation), its error bodies and ``x-correlator`` echo
(:mod:`numident.camara.common`).
"""
