"""The CAMARA / GSMA Open Gateway APIs that the operator gateway serves from its registry.

Each API is one module with one implementation; :mod:`numident.camara.releases` lists the
versions each is served at, and :mod:`numident.camara.app` mounts every version not switched
off, with its own OpenAPI document. They share the gateway's OAuth2
tokens (a scope per operation), its error bodies and ``x-correlator`` echo
(:mod:`numident.camara.common`).
"""
